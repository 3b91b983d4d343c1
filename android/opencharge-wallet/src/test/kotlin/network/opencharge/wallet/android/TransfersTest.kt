// The layer's helpers for paying a person: the receive QR drawn by the core's renderer, the name
// shown for a payee, and the message of a refused transfer (an unknown person is not an unknown
// device).
package network.opencharge.wallet.android

import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertTrue
import network.opencharge.wallet.GatewayErrorCode
import network.opencharge.wallet.Payee
import network.opencharge.wallet.ReceiveAddress
import network.opencharge.wallet.WalletException
import org.junit.jupiter.api.Test

class TransfersTest {
    private val address = ReceiveAddress(
        ocid = 200001,
        gatewayOcid = 200,
        name = "Bob",
        qrPayload = """{"type":"ocid_transfer","ocid":200001,"gateway":200}""",
    )

    @Test
    fun `the receive QR renders as PNG and SVG`() {
        val png = address.qrPng(4)
        assertContentEquals(byteArrayOf(0x89.toByte(), 'P'.code.toByte(), 'N'.code.toByte(), 'G'.code.toByte()), png.copyOf(4))
        assertTrue(address.qrSvg().startsWith("<svg"), "an SVG document")
    }

    @Test
    fun `a payee is shown by name, else by OCID`() {
        val named = Payee(200001, 200, "Wallet Co", "Bob", null, null)
        assertEquals("Bob", named.displayName)
        assertEquals("OCID 200001", named.copy(name = null).displayName)
        assertEquals("OCID 200001", named.copy(name = "  ").displayName)
    }

    @Test
    fun `an unknown person is its own message, other errors read as usual`() {
        fun gateway(code: GatewayErrorCode, raw: String, status: Int) =
            WalletException.Gateway(code = code, rawCode = raw, reason = "refused", httpStatus = status, details = null)
        val unknown = gateway(GatewayErrorCode.ACCOUNT_NOT_FOUND, "ACCOUNT_NOT_FOUND", 404)
        assertEquals(UserMessage.RECIPIENT_NOT_FOUND, unknown.toTransferMessage())
        assertEquals(UserMessage.DEVICE_NOT_REGISTERED, unknown.toUserMessage(), "outside a transfer: this device")
        assertEquals(UserMessage.RECIPIENT_NOT_FOUND, gateway(GatewayErrorCode.UNKNOWN_OCID, "UNKNOWN_OCID", 400).toTransferMessage())
        assertEquals(UserMessage.NOT_SUPPORTED, gateway(GatewayErrorCode.SETTLEMENT_NOT_SUPPORTED, "SETTLEMENT_NOT_SUPPORTED", 400).toTransferMessage())
        assertEquals(UserMessage.INSUFFICIENT_FUNDS, gateway(GatewayErrorCode.INSUFFICIENT_FUNDS, "INSUFFICIENT_FUNDS", 402).toTransferMessage())
        assertEquals(UserMessage.NO_CONNECTION, WalletException.Network(reason = "offline").toTransferMessage())
    }
}
