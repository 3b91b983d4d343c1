// What an app implements on its side of the bindings, written the way an Android app would:
// a DeviceKeyStore (in memory, and one that always throws), a WalletListener that turns callbacks
// into a coroutine Channel/Flow, and a LogSink that collects records; plus opening a wallet
// on the sandbox as an app does (config, enrollment, funds).
package network.opencharge.wallet.test

import java.nio.file.Path
import java.util.Collections
import java.util.concurrent.ConcurrentHashMap
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.receiveAsFlow
import kotlinx.coroutines.withTimeout
import network.opencharge.wallet.ConnectionState
import network.opencharge.wallet.DeviceKeyStore
import network.opencharge.wallet.DirectoryEntry
import network.opencharge.wallet.LogLevel
import network.opencharge.wallet.LogSink
import network.opencharge.wallet.PaymentPrompt
import network.opencharge.wallet.PaymentStatusUpdate
import network.opencharge.wallet.Wallet
import network.opencharge.wallet.WalletConfig
import network.opencharge.wallet.WalletListener
import network.opencharge.wallet.setLogSink

/** How long a test waits for something that should happen at once (a guard, not a measurement). */
const val WAIT_MS = 30_000L

/** A [DeviceKeyStore] keeping secrets in memory, recording every call (what a Keychain wrapper does). */
class MemoryKeyStore : DeviceKeyStore {
    /** The stored secrets by alias. */
    val secrets = ConcurrentHashMap<String, ByteArray>()
    /** Every call, in order: "load:alias", "store:alias:<n> bytes", "delete:alias". */
    val calls: MutableList<String> = Collections.synchronizedList(mutableListOf())

    override fun load(alias: String): ByteArray? {
        calls += "load:$alias"
        return secrets[alias]?.copyOf()
    }

    override fun store(alias: String, secret: ByteArray) {
        calls += "store:$alias:${secret.size}"
        secrets[alias] = secret.copyOf()
    }

    override fun delete(alias: String) {
        calls += "delete:$alias"
        secrets.remove(alias)
    }
}

/** A [DeviceKeyStore] whose every call throws, like a Keystore that is locked or was invalidated. */
class ThrowingKeyStore(private val why: String = "the key store is locked") : DeviceKeyStore {
    override fun load(alias: String): ByteArray? = throw IllegalStateException(why)
    override fun store(alias: String, secret: ByteArray) = throw IllegalStateException(why)
    override fun delete(alias: String) = throw IllegalStateException(why)
}

/** One call the core made on a [WalletListener]. */
sealed class Heard {
    data class Prompt(val prompt: PaymentPrompt) : Heard()
    data class Rejected(val promptId: String, val reason: String) : Heard()
    data class Status(val update: PaymentStatusUpdate) : Heard()
    data class Connection(val state: ConnectionState) : Heard()
}

/**
 * A [WalletListener] that forwards every callback into an unbounded [Channel] (never blocks the
 * core's thread), readable as a [Flow]; `failPrompts` makes `onPrompt` throw after recording.
 */
class ChannelListener(private val failPrompts: Boolean = false) : WalletListener {
    private val channel = Channel<Heard>(Channel.UNLIMITED)
    /** Everything heard so far, in order. */
    val heard: MutableList<Heard> = Collections.synchronizedList(mutableListOf())
    /** The callbacks as a flow (each element is delivered to one collector). */
    val events: Flow<Heard> = channel.receiveAsFlow()

    private fun record(h: Heard) {
        heard += h
        channel.trySend(h)
    }

    override fun onPrompt(prompt: PaymentPrompt) {
        record(Heard.Prompt(prompt))
        if (failPrompts) throw IllegalStateException("the app's prompt screen crashed")
    }

    override fun onPromptRejected(promptId: String, reason: String) = record(Heard.Rejected(promptId, reason))

    override fun onPaymentStatus(update: PaymentStatusUpdate) = record(Heard.Status(update))

    override fun onConnectionState(state: ConnectionState) = record(Heard.Connection(state))

    /**
     * Waits (bounded by [WAIT_MS]) for a callback matching `pick`: the first one already heard,
     * else the next one that arrives.
     */
    suspend fun <T : Any> await(what: String, pick: (Heard) -> T?): T {
        synchronized(heard) { heard.firstNotNullOfOrNull(pick) }?.let { return it }
        return try {
            withTimeout(WAIT_MS) {
                var found: T? = null
                events.first { h -> pick(h)?.also { found = it } != null }
                found ?: throw AssertionError("unreachable")
            }
        } catch (e: kotlinx.coroutines.TimeoutCancellationException) {
            throw AssertionError("timed out waiting for $what; heard ${heard.toList()}")
        }
    }

    /** Waits until the stream is connected. */
    suspend fun connected() = await("Connected") { (it as? Heard.Connection)?.state as? ConnectionState.Connected }

    /** Waits for the prompt with this id. */
    suspend fun prompt(id: String): PaymentPrompt =
        await("prompt $id") { (it as? Heard.Prompt)?.prompt?.takeIf { p -> p.promptId == id } }
}

/** A [LogSink] that keeps every record. Installed once for the whole process (it is global). */
object CollectedLogs : LogSink {
    /** One record. */
    data class Record(val level: LogLevel, val target: String, val message: String)

    /** Every record since installation, in order. */
    val records: MutableList<Record> = Collections.synchronizedList(mutableListOf())

    override fun log(level: LogLevel, target: String, message: String) {
        records += Record(level, target, message)
    }

    private val installed by lazy { setLogSink(this, LogLevel.DEBUG) }

    /** Installs the sink (idempotent). */
    fun install() = installed

    /** A snapshot of the records after index `from`. */
    fun since(from: Int): List<Record> = synchronized(records) { records.drop(from) }
}

/** The configuration an app uses on the sandbox: loopback http allowed, merchant in the directory. */
fun Sandbox.config(dataDir: Path) = WalletConfig(
    gatewayUrl = gatewayUrl,
    dataDir = dataDir.toString(),
    gatewayOcid = gatewayOcid,
    directory = listOf(DirectoryEntry(merchantOcid, merchantMetadataUrl)),
    allowInsecureLoopback = true,
)

/** An opened, registered and (optionally) funded wallet, as after an app's onboarding. */
class AppWallet(val wallet: Wallet, val accountId: String, val keyStore: MemoryKeyStore)

/** Opens a wallet on a new data dir with an in-memory key store, enrolls it and funds it. */
suspend fun Sandbox.onboard(name: String, funds: String?): AppWallet {
    val keyStore = MemoryKeyStore()
    val wallet = Wallet.open(config(appDir(name)), keyStore)
    val account = newAccount(name)
    val registration = wallet.registerDevice(account.enrollmentCode)
    check(registration.accountId == account.id) { "registered to ${registration.accountId}, not ${account.id}" }
    if (funds != null) fund(account.id, funds)
    return AppWallet(wallet, account.id, keyStore)
}

/** The USD balance as the exact decimal string the core returns. */
suspend fun Wallet.usd(): String = balance().single { it.currency == "USD" }.amount
