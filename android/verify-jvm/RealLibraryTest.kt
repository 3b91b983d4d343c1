// The Android layer's plain-Kotlin parts against the real wallet core on the host JVM (JNA,
// target/debug/libopencharge_wallet.so) and a real `opencharge sandbox`: the sealed key store as
// the core's DeviceKeyStore, the events Flow through a whole wallet-QR payment, its cancellation
// and its end when the wallet closes, and a payment to a person through the transfer helpers. Run by android/verify-jvm.sh (not by Gradle: it needs the
// host library and the sandbox binary).
package network.opencharge.wallet.android

import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.math.BigDecimal
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.time.Duration
import java.util.Locale
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicReference
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertIs
import kotlin.test.assertNotNull
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import network.opencharge.wallet.ConnectionState
import network.opencharge.wallet.DirectoryEntry
import network.opencharge.wallet.EventStream
import network.opencharge.wallet.HistoryQuery
import network.opencharge.wallet.PaymentFlow
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.PushEvent
import network.opencharge.wallet.ScanResult
import network.opencharge.wallet.Wallet
import network.opencharge.wallet.WalletConfig
import network.opencharge.wallet.WalletException
import org.junit.After
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.Test

/** A running `opencharge sandbox`: its one JSON line and its dev endpoints. */
class SandboxProcess(binary: File) : AutoCloseable {
    private val process: Process = ProcessBuilder(binary.path, "sandbox")
        .redirectError(ProcessBuilder.Redirect.INHERIT)
        .start()
    private val info: String = BufferedReader(InputStreamReader(process.inputStream)).readLine()
        ?: throw AssertionError("the sandbox exited before printing its description")
    private val http: HttpClient = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()

    val gatewayUrl: String = field("gatewayUrl")
    val gatewayOcid: Long = field("gatewayOcid").toLong()
    val merchantUrl: String = field("merchantUrl")
    val merchantOcid: Long = field("merchantOcid").toLong()
    val merchantMetadataUrl: String = field("merchantMetadataUrl")

    /** A string or number field of a flat JSON object. */
    private fun field(name: String, json: String = info): String =
        Regex("\"$name\"\\s*:\\s*(?:\"((?:[^\"\\\\]|\\\\.)*)\"|(-?[0-9]+))").find(json)
            ?.let { it.groupValues[1].ifEmpty { it.groupValues[2] } }
            ?: throw AssertionError("no $name in $json")

    private fun post(url: String, json: String): String {
        val request = HttpRequest.newBuilder(URI.create(url))
            .timeout(Duration.ofSeconds(30))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json))
            .build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        if (response.statusCode() !in 200..299) {
            throw AssertionError("POST $url: HTTP ${response.statusCode()} ${response.body()}")
        }
        return response.body()
    }

    private fun get(url: String): String {
        val request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).GET().build()
        return http.send(request, HttpResponse.BodyHandlers.ofString()).body()
    }

    /** A new account funded with [usd] USD: its id and enrollment code. */
    fun account(name: String, usd: String): Pair<String, String> {
        val answer = post("$gatewayUrl/dev/accounts", """{"name":"$name"}""")
        val id = field("accountId", answer)
        post("$gatewayUrl/dev/accounts/$id/fund", """{"currency":"USD","amount":"$usd"}""")
        return id to field("enrollmentCode", answer)
    }

    /** A signed order for [quantity] coffees at 2.50 USD: its id. */
    fun order(quantity: Int): String = field(
        "orderId",
        post(
            "$merchantUrl/dev/orders",
            """{"items":[{"id":"coffee","name":"Coffee","quantity":$quantity,"price":"2.50"}],"currency":"USD"}""",
        ),
    )

    /** The merchant posts the order to the wallet's session (it "scans" the wallet's QR). */
    fun postToSession(orderId: String, sessionQr: String) {
        post("$merchantUrl/dev/orders/$orderId/post", """{"sessionQr":${jsonString(sessionQr)}}""")
    }

    /** The merchant's status of an order. */
    fun orderStatus(orderId: String): String = field("status", get("$merchantUrl/dev/orders/$orderId"))

    override fun close() {
        runCatching { process.outputStream.close() }
        if (!process.waitFor(15, TimeUnit.SECONDS)) {
            process.destroy()
            process.waitFor(5, TimeUnit.SECONDS)
        }
    }

    private fun jsonString(text: String): String =
        "\"" + text.replace("\\", "\\\\").replace("\"", "\\\"") + "\""
}

class RealLibraryTest {
    private val dataDir: File = Files.createTempDirectory("android-jvm-wallet").toFile()

    @After
    fun cleanUp() {
        dataDir.deleteRecursively()
    }

    private fun offlineConfig() = WalletConfig(
        gatewayUrl = "https://wallet.example/opencharge",
        dataDir = dataDir.path,
        gatewayOcid = null,
        directory = emptyList(),
        metadataUrlTemplate = null,
        allowInsecureLoopback = false,
        requestTimeoutMs = 30_000,
        lowMemory = false,
    )

    private fun sandboxConfig() = WalletConfig(
        gatewayUrl = sandbox.gatewayUrl,
        dataDir = dataDir.path,
        gatewayOcid = sandbox.gatewayOcid,
        directory = listOf(DirectoryEntry(sandbox.merchantOcid, sandbox.merchantMetadataUrl)),
        metadataUrlTemplate = null,
        allowInsecureLoopback = true,
        requestTimeoutMs = 30_000,
        lowMemory = false,
    )

    /** The core generates its device key into the sealed store and finds it there again;
     *  a tampered file stops the wallet from opening with WalletException.KeyStorage. */
    @Test
    fun theSealedStoreKeepsTheCoresDeviceKey() = runBlocking {
        val cipher = JvmAesGcmCipher()
        val keys = File(dataDir, "sealed")
        val store = SealedSecretStore(keys, cipher)
        val publicKey = Wallet.open(offlineConfig(), store).use { it.devicePublicKey() }
        val sealed = store.fileOf("device-key")
        assertTrue(sealed.isFile, "the core stored its key through the DeviceKeyStore")
        assertContentEquals("OCWK".toByteArray(), sealed.readBytes().copyOfRange(0, 4))
        assertEquals(false, File(dataDir, "keys").exists(), "no file key store when a DeviceKeyStore is passed")

        Wallet.open(offlineConfig(), SealedSecretStore(keys, cipher)).use {
            assertEquals(publicKey, it.devicePublicKey())
        }

        val bytes = sealed.readBytes()
        bytes[bytes.size - 1] = (bytes[bytes.size - 1].toInt() xor 0x40).toByte()
        sealed.writeBytes(bytes)
        assertFailsWith<WalletException.KeyStorage> { Wallet.open(offlineConfig(), SealedSecretStore(keys, cipher)) }
        Unit
    }

    /** Flow 1 through the events Flow: connected, the prompt, the paid status; cancelling the
     *  collector then stops the core's event stream. */
    @Test
    fun theEventsFlowCarriesAPaymentAndCancellationStopsTheStream() = runBlocking {
        val (_, code) = sandbox.account("android-jvm-flow", "20.00")
        Wallet.open(sandboxConfig(), SealedSecretStore(File(dataDir, "sealed"), JvmAesGcmCipher())).use { wallet ->
            wallet.registerDevice(code)
            val handle = AtomicReference<EventStream>()
            val events = Channel<WalletEvent>(Channel.UNLIMITED)
            val collector = launch(Dispatchers.Default) {
                walletEvents { listener -> wallet.startEvents(listener).also { handle.set(it) } }
                    .collect { events.send(it) }
            }
            suspend fun <T : Any> await(what: String, pick: (WalletEvent) -> T?): T = withTimeout(30_000) {
                var found: T? = null
                while (found == null) {
                    found = pick(events.receive())
                }
                found
            }

            await("connected") { (it as? WalletEvent.ConnectionStateChanged)?.state as? ConnectionState.Connected }
            val session = wallet.createPaymentSession()
            val orderId = sandbox.order(2)
            sandbox.postToSession(orderId, session.qrPayload)
            val prompt = await("the prompt") { (it as? WalletEvent.Prompt)?.prompt?.takeIf { p -> p.promptId == session.sessionId } }
            assertEquals(PaymentFlow.WALLET_QR, prompt.flow)
            assertEquals("Demo Coffee", prompt.merchantName)
            assertEquals("5.00", prompt.total.amount)
            assertEquals(500L, prompt.total.minorUnits)
            // The layer's Money helpers on a Money the real core produced.
            assertEquals(BigDecimal("5.00"), prompt.total.toBigDecimal())
            assertEquals("$5.00", prompt.total.format(Locale.US))
            // The JDK separates the number and the symbol with a (narrow) no-break space.
            assertEquals("5,00 $", prompt.total.format(Locale.GERMANY).replace('\u00a0', ' ').replace('\u202f', ' '))

            val receipt = wallet.confirm(prompt.promptId)
            assertEquals(PaymentStatus.PAID, receipt.status)
            assertTrue(receipt.proofVerified)
            val update = await("the paid status") {
                (it as? WalletEvent.PaymentStatusChanged)?.update?.takeIf { u -> u.sessionId == session.sessionId }
            }
            assertEquals(PaymentStatus.PAID, update.status)
            assertEquals(receipt.txid, update.txid)

            val stream = assertNotNull(handle.get())
            assertTrue(stream.isRunning())
            collector.cancelAndJoin()
            withTimeout(30_000) {
                while (stream.isRunning()) delay(20)
            }
            withTimeout(30_000) {
                while (sandbox.orderStatus(orderId) != "paid") delay(50)
            }
        }
    }

    /** A person is paid through the layer: Bob's receive address and its QR, Alice scans a
     *  link asking for 1.50 USD and pays exactly that (payRequestedAmount), Bob's events Flow
     *  carries the paid status of a receipt his history shows as RECEIVED from Alice. */
    @Test
    fun aPersonIsPaidThroughTheTransferHelpers() = runBlocking {
        val (_, aliceCode) = sandbox.account("android-jvm-alice", "5.00")
        val (_, bobCode) = sandbox.account("android-jvm-bob", "1.00")
        val aliceConfig = sandboxConfig().copy(dataDir = File(dataDir, "alice").path)
        val bobConfig = sandboxConfig().copy(dataDir = File(dataDir, "bob").path)
        Wallet.open(aliceConfig, null).use { alice ->
            Wallet.open(bobConfig, null).use { bob ->
                alice.registerDevice(aliceCode)
                bob.registerDevice(bobCode)
                val events = Channel<WalletEvent>(Channel.UNLIMITED)
                val collector = launch(Dispatchers.Default) { bob.events().collect { events.send(it) } }
                suspend fun <T : Any> await(what: String, pick: (WalletEvent) -> T?): T = withTimeout(30_000) {
                    var found: T? = null
                    while (found == null) {
                        found = pick(events.receive())
                    }
                    found
                }
                await("connected") { (it as? WalletEvent.ConnectionStateChanged)?.state as? ConnectionState.Connected }

                val address = bob.receiveAddress()
                assertContentEquals(byteArrayOf(0x89.toByte(), 'P'.code.toByte()), address.qrPng(2).copyOf(2))
                val link = "opencharge:${address.ocid}?gateway=${address.gatewayOcid}&amount=1.50&currency=USD"
                val payee = assertIs<ScanResult.Person>(alice.scan(link)).payee
                assertEquals("android-jvm-bob", payee.displayName)
                val prompt = alice.payRequestedAmount(payee)
                assertTrue(prompt.isTransfer)
                assertEquals(PaymentFlow.TRANSFER, prompt.flow)
                assertEquals(BigDecimal("1.50"), prompt.total.toBigDecimal())
                assertEquals(PaymentStatus.PAID, alice.confirm(prompt.promptId).status)

                val update = await("Bob's paid status") {
                    (it as? WalletEvent.PaymentStatusChanged)?.update?.takeIf { u -> u.status == PaymentStatus.PAID }
                }
                val received = bob.history(HistoryQuery(10, null)).receipts.single { it.sessionId == update.sessionId }
                assertEquals(PaymentFlow.RECEIVED, received.flow)
                assertEquals("android-jvm-alice", received.merchantName)
                assertEquals("1.50", received.amount?.amount)
                collector.cancelAndJoin()
            }
        }
    }

    /** An FCM data map through the layer's handlePush in low-memory mode: the verified prompt
     *  and its notification text once, then nothing new; another sender's data is refused. */
    @Test
    fun anFcmDataMapGivesTheVerifiedPromptOnce() = runBlocking<Unit> {
        val (_, code) = sandbox.account("android-jvm-push", "20.00")
        Wallet.open(sandboxConfig().copy(lowMemory = true), SealedSecretStore(File(dataDir, "sealed"), JvmAesGcmCipher())).use { wallet ->
            wallet.registerDevice(code)
            val session = wallet.createPaymentSession()
            sandbox.postToSession(sandbox.order(3), session.qrPayload)
            val data = mapOf("type" to "payment_request", "sessionId" to session.sessionId, "eventId" to "1")
            val request = assertIs<PushEvent.PaymentRequest>(wallet.handlePush(data))
            assertEquals(session.sessionId, request.prompt.promptId)
            assertEquals("Demo Coffee", request.notification.title)
            assertEquals("7.50 USD", request.notification.body)
            assertIs<PushEvent.NothingNew>(wallet.handlePush(data))
            assertFailsWith<WalletException.InvalidInput> { wallet.handlePush(mapOf("from" to "another sender")) }
        }
    }

    /** Wiping the wallet (which closes it) ends the events Flow after ConnectionState.Stopped. */
    @Test
    fun wipingTheWalletCompletesTheEventsFlow() = runBlocking {
        val (_, code) = sandbox.account("android-jvm-close", "1.00")
        val wallet = Wallet.open(sandboxConfig(), null)
        wallet.registerDevice(code)
        val seen = Channel<WalletEvent>(Channel.UNLIMITED)
        val collector = launch(Dispatchers.Default) {
            wallet.events().collect { seen.send(it) }
        }
        withTimeout(30_000) {
            do {
                val event = seen.receive()
            } while (event != WalletEvent.ConnectionStateChanged(ConnectionState.Connected))
        }
        wallet.wipe()
        withTimeout(30_000) { collector.join() }
        val rest = generateSequence { seen.tryReceive().getOrNull() }.toList()
        assertEquals(WalletEvent.ConnectionStateChanged(ConnectionState.Stopped), rest.lastOrNull())
        wallet.close()
    }

    companion object {
        private lateinit var sandbox: SandboxProcess

        @BeforeClass
        @JvmStatic
        fun startSandbox() {
            val binary = File(System.getProperty("opencharge.bin") ?: "target/debug/opencharge")
            if (!binary.canExecute()) throw AssertionError("no sandbox binary at $binary (cargo build -p opencharge-cli)")
            sandbox = SandboxProcess(binary)
        }

        @AfterClass
        @JvmStatic
        fun stopSandbox() {
            if (::sandbox.isInitialized) sandbox.close()
        }
    }
}
