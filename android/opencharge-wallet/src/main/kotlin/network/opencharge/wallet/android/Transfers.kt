// Transfers.kt: paying a person and being paid, on top of the generated `Wallet.sendToPerson`,
// `Wallet.receiveAddress` and `ScanResult.Person` (plain Kotlin, no android.*, so it is compiled
// and tested on the JVM too): the receive QR drawn by the core's QR rendering, the name to show
// for a payee, paying what a scanned code asks, and the message for a refused transfer.
package network.opencharge.wallet.android

import network.opencharge.wallet.GatewayErrorCode
import network.opencharge.wallet.Payee
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.ReceiveAddress
import network.opencharge.wallet.WalletException
import network.opencharge.wallet.WalletInterface
import network.opencharge.wallet.renderQrPng
import network.opencharge.wallet.renderQrSvg

/**
 * The receive QR as a PNG (greyscale, 4-module quiet zone, [modulePx] pixels per module, 1–64),
 * for `BitmapFactory.decodeByteArray`. Show it so another wallet can scan and pay this account.
 */
fun ReceiveAddress.qrPng(modulePx: Int = 8): ByteArray = renderQrPng(qrPayload, modulePx)

/** The receive QR as a self-contained SVG document ([modulePx] pixels per module, 1–64). */
fun ReceiveAddress.qrSvg(modulePx: Int = 8): String = renderQrSvg(qrPayload, modulePx)

/**
 * What to call this person on screen: their name when their gateway gave one (it knows only its
 * own users), else `OCID 200001`. Show [Payee.gatewayName] beside it: it says which wallet
 * company holds the account.
 */
val Payee.displayName: String
    get() = name?.takeIf { it.isNotBlank() } ?: "OCID $ocid"

/** The person a transfer prompt pays ([PaymentPrompt.recipient]), or null for a merchant's. */
val PaymentPrompt.isTransfer: Boolean
    get() = recipient != null

/**
 * Asks the gateway for a prompt paying exactly what the scanned code asks ([Payee.amount]) with
 * its memo, or [memo] instead; then show it and `confirm(prompt.promptId)`. Throws
 * `IllegalArgumentException` when the code carries no amount: ask the user for one and call
 * `sendToPerson(payee, amount, memo)`.
 */
suspend fun WalletInterface.payRequestedAmount(payee: Payee, memo: String? = payee.memo): PaymentPrompt {
    val amount = requireNotNull(payee.amount) { "this code carries no amount: ask for one" }
    return sendToPerson(payee, amount, memo)
}

/**
 * The message for an error of `sendToPerson`: a person the gateway cannot find
 * (`ACCOUNT_NOT_FOUND`, `UNKNOWN_OCID`) is [UserMessage.RECIPIENT_NOT_FOUND] (elsewhere those
 * codes mean this device is unknown); every other error reads as [toUserMessage] says.
 */
fun WalletException.toTransferMessage(): UserMessage = when {
    this is WalletException.Gateway &&
        (code == GatewayErrorCode.ACCOUNT_NOT_FOUND || code == GatewayErrorCode.UNKNOWN_OCID) ->
        UserMessage.RECIPIENT_NOT_FOUND
    else -> toUserMessage()
}
