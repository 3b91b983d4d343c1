// Test harness: spawns `opencharge sandbox` (a gateway and a merchant on loopback with dev
// endpoints), reads its one JSON line, drives the dev endpoints over java.net.http, and stops
// it at the end of the run by closing its stdin. One sandbox serves every test class.
package network.opencharge.wallet.test

import java.io.File
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.time.Duration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import org.junit.jupiter.api.extension.ExtensionContext
import org.junit.jupiter.api.extension.ParameterContext
import org.junit.jupiter.api.extension.ParameterResolver

/** A running sandbox: its URLs and OCIDs, and the dev endpoints of its gateway and merchant. */
class Sandbox private constructor(
    private val process: Process,
    private val log: File,
    info: Map<String, Any?>,
) : ExtensionContext.Store.CloseableResource, AutoCloseable {
    /** The gateway's Opencharge endpoint (what a wallet is configured with). */
    val gatewayUrl: String = info.str("gatewayUrl")
    /** The gateway's OCID (200). */
    val gatewayOcid: Long = info.long("gatewayOcid")
    /** The merchant's Opencharge endpoint (its dev endpoints live under it). */
    val merchantUrl: String = info.str("merchantUrl")
    /** The merchant's OCID (500). */
    val merchantOcid: Long = info.long("merchantOcid")
    /** Where the merchant's metadata is: the wallet's directory entry for it. */
    val merchantMetadataUrl: String = info.str("merchantMetadataUrl")

    /** Where the tests' app data directories live; deleted when the sandbox closes. */
    private val appDirs: Path = Files.createTempDirectory("opencharge-kotlin-apps-")

    /** A fresh, empty app data directory (the app's private files dir). */
    fun appDir(name: String): Path = Files.createTempDirectory(appDirs, "$name-")

    private val http: HttpClient = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()

    /** POSTs `body` as JSON to `url`; fails the test unless the answer is 2xx JSON. */
    fun post(url: String, body: Any?): Map<String, Any?> = send(
        HttpRequest.newBuilder(URI.create(url))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(Json.write(body))),
    )

    /** GETs `url`; fails the test unless the answer is 2xx JSON. */
    fun get(url: String): Map<String, Any?> = send(HttpRequest.newBuilder(URI.create(url)).GET())

    private fun send(request: HttpRequest.Builder): Map<String, Any?> {
        val built = request.timeout(Duration.ofSeconds(30)).build()
        val response = http.send(built, HttpResponse.BodyHandlers.ofString())
        if (response.statusCode() !in 200..299) {
            throw AssertionError("${built.method()} ${built.uri()}: HTTP ${response.statusCode()} ${response.body()}")
        }
        return Json.obj(response.body())
    }

    // ---- gateway dev endpoints ------------------------------------------------------------

    /** A new account: its id and a one-time enrollment code. */
    fun newAccount(name: String): Account {
        val answer = post("$gatewayUrl/dev/accounts", mapOf("name" to name))
        return Account(answer.str("accountId"), answer.str("enrollmentCode"))
    }

    /** A new one-time enrollment code for an existing account (to register a second device). */
    fun enrollmentCode(accountId: String): String =
        post("$gatewayUrl/dev/accounts/$accountId/enrollments", emptyMap<String, Any?>()).str("enrollmentCode")

    /** Credits `amount` USD to the account. */
    fun fund(accountId: String, amount: String) {
        post("$gatewayUrl/dev/accounts/$accountId/fund", mapOf("currency" to "USD", "amount" to amount))
    }

    // ---- merchant dev endpoints -----------------------------------------------------------

    /** Creates and signs a merchant order from `items` (id to name, quantity, unit price). */
    fun createOrder(vararg items: Item, reference: String? = null): Order {
        val body = mutableMapOf<String, Any?>(
            "items" to items.map {
                mapOf("id" to it.id, "name" to it.name, "quantity" to it.quantity, "price" to it.price)
            },
            "currency" to "USD",
        )
        if (reference != null) body["reference"] = reference
        val answer = post("$merchantUrl/dev/orders", body)
        return Order(answer.str("orderId"), answer.str("qr"))
    }

    /** The merchant "scans" the wallet's session QR: it posts the order to that session. */
    fun postToSession(orderId: String, sessionQr: String) {
        post("$merchantUrl/dev/orders/$orderId/post", mapOf("sessionQr" to sessionQr))
    }

    /** Opens a hosted checkout for the order at the sandbox gateway; returns its URL. */
    fun checkout(orderId: String, successUrl: String, cancelUrl: String): String =
        post(
            "$merchantUrl/dev/orders/$orderId/checkout",
            mapOf("gatewayOcid" to gatewayOcid, "successUrl" to successUrl, "cancelUrl" to cancelUrl),
        ).str("checkoutUrl")

    /** The merchant's view of an order: status, amount, txid, issuer. */
    fun order(orderId: String): Map<String, Any?> = get("$merchantUrl/dev/orders/$orderId")

    /** Polls the merchant's view until the order is paid (the proof reaches it by webhook). */
    fun awaitPaid(orderId: String, timeout: Duration = Duration.ofSeconds(30)): Map<String, Any?> {
        val deadline = System.nanoTime() + timeout.toNanos()
        while (true) {
            val view = order(orderId)
            if (view["status"] == "paid") return view
            if (System.nanoTime() > deadline) throw AssertionError("order $orderId not paid: $view")
            Thread.sleep(50)
        }
    }

    /** The merchant's inventory QR text. */
    fun inventoryQr(): String = get("$merchantUrl/dev/inventory-qr").str("qr")

    /** The last lines the sandbox logged (stderr), for failure messages. */
    fun logTail(): String = runCatching { log.readText().takeLast(3000) }.getOrDefault("")

    /** Stops the sandbox: closing its stdin ends it; killed if it has not exited in 15 s. */
    override fun close() {
        runCatching { process.outputStream.close() }
        if (!process.waitFor(15, TimeUnit.SECONDS)) {
            process.destroy()
            if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly()
        }
        appDirs.toFile().deleteRecursively()
        log.delete()
    }

    /** A dev account. */
    data class Account(val id: String, val enrollmentCode: String)

    /** An order line for [createOrder]. */
    data class Item(val id: String, val name: String, val quantity: Int, val price: String)

    /** A created order: its id and its merchant-order QR text. */
    data class Order(val id: String, val qr: String)

    companion object {
        /** The repository root: `-Dopencharge.root`, else the working directory. */
        val root: Path = Paths.get(System.getProperty("opencharge.root") ?: ".").toAbsolutePath().normalize()

        /** The `opencharge` binary: `-Dopencharge.bin`, env `OPENCHARGE_BIN`, else target/debug/opencharge. */
        fun binary(): Path {
            val configured = System.getProperty("opencharge.bin") ?: System.getenv("OPENCHARGE_BIN")
            return if (configured != null) root.resolve(configured) else root.resolve("target/debug/opencharge")
        }

        /** Spawns the sandbox and waits (at most 90 s) for its JSON line. */
        fun start(): Sandbox {
            val bin = binary()
            if (!Files.isExecutable(bin)) {
                throw IllegalStateException("no opencharge binary at $bin (cargo build -p opencharge-cli)")
            }
            val log = File.createTempFile("opencharge-sandbox", ".log")
            val process = ProcessBuilder(bin.toString(), "sandbox")
                .redirectError(ProcessBuilder.Redirect.to(log))
                .start()
            val reader = process.inputStream.bufferedReader()
            val line = try {
                CompletableFuture.supplyAsync { reader.readLine() }.get(90, TimeUnit.SECONDS)
            } catch (e: Exception) {
                process.destroyForcibly()
                throw IllegalStateException("the sandbox did not describe itself: $e\n${log.readText().takeLast(2000)}")
            }
            if (line == null) {
                process.waitFor(5, TimeUnit.SECONDS)
                throw IllegalStateException("the sandbox exited before describing itself:\n${log.readText().takeLast(2000)}")
            }
            return Sandbox(process, log, Json.obj(line))
        }
    }
}

/**
 * Gives test classes the shared [Sandbox] (constructor or method parameter). It is started on
 * first use and closed by JUnit when the whole run ends (root store, CloseableResource).
 */
class SandboxExtension : ParameterResolver {
    override fun supportsParameter(parameter: ParameterContext, context: ExtensionContext): Boolean =
        parameter.parameter.type == Sandbox::class.java

    override fun resolveParameter(parameter: ParameterContext, context: ExtensionContext): Any =
        context.root.getStore(ExtensionContext.Namespace.GLOBAL)
            .getOrComputeIfAbsent(Sandbox::class.java.name, { Sandbox.start() }, Sandbox::class.java)
}
