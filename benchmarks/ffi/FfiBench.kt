// FFI cost of the wallet core seen from Kotlin: times the main calls through the generated
// uniffi bindings (JNA) on the host JVM, after warm-up, and prints nanoseconds per call.
// Data comes from a real `opencharge sandbox` (started here, stopped at exit): the wallet pays
// 1 000 times through the real API (so `history` has 1 000 receipts with verified proofs),
// then 100 orders are posted to fresh sessions and fetched (so `pendingPrompts` returns 100).
// Run it with scripts/bench-ffi.sh; it is a measurement, not a test.
package network.opencharge.wallet.bench

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.runBlocking
import network.opencharge.wallet.DirectoryEntry
import network.opencharge.wallet.HistoryQuery
import network.opencharge.wallet.PaymentStatus
import network.opencharge.wallet.Wallet
import network.opencharge.wallet.WalletConfig
import network.opencharge.wallet.renderQrMatrix
import network.opencharge.wallet.renderQrPng
import network.opencharge.wallet.renderQrSvg

/** Receipts the history benchmark reads. */
const val RECEIPTS = 1000
/** Prompts the pendingPrompts benchmark lists. */
const val PROMPTS = 100
/** Payments and postings in flight while seeding. */
const val SEED_WORKERS = 8

/** Keeps results alive so the JIT cannot drop the calls being timed. */
@Volatile var sink: Any? = null

/** One benchmark's result: nanoseconds per call in each timed round. */
class Row(val name: String, val calls: Int, val rounds: List<Double>) {
    val median: Double get() = rounds.sorted()[rounds.size / 2]
    val best: Double get() = rounds.minOrNull() ?: 0.0
}

/** Times `body`: `warmup` untimed calls, then `rounds` rounds of `calls` calls each. */
fun bench(name: String, warmup: Int, calls: Int, rounds: Int = 7, body: () -> Any?): Row {
    repeat(warmup) { sink = body() }
    val perCall = (1..rounds).map {
        val start = System.nanoTime()
        repeat(calls) { sink = body() }
        (System.nanoTime() - start).toDouble() / calls
    }
    return Row(name, calls, perCall).also { System.err.println("  timed %-44s %12.0f ns/call".format(name, it.median)) }
}

/** The sandbox process and its dev endpoints (java.net.http, no JSON library needed). */
class Sandbox(private val process: Process, line: String) : AutoCloseable {
    val gatewayUrl = field(line, "gatewayUrl")
    val merchantUrl = field(line, "merchantUrl")
    val merchantMetadataUrl = field(line, "merchantMetadataUrl")
    val merchantOcid = number(line, "merchantOcid")
    val gatewayOcid = number(line, "gatewayOcid")
    private val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()

    fun post(url: String, json: String): String {
        val request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json)).build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() in 200..299) { "POST $url: HTTP ${response.statusCode()} ${response.body()}" }
        return response.body()
    }

    /** A merchant order of one coffee (2.50 USD) posted to the wallet session `sessionQr`. */
    fun postOrder(sessionQr: String) {
        val order = post("$merchantUrl/dev/orders",
            """{"items":[{"id":"coffee","name":"Coffee","quantity":1,"price":"2.50"}],"currency":"USD"}""")
        val id = field(order, "orderId")
        post("$merchantUrl/dev/orders/$id/post", """{"sessionQr":${quote(sessionQr)}}""")
    }

    override fun close() {
        runCatching { process.outputStream.close() }
        if (!process.waitFor(15, TimeUnit.SECONDS)) process.destroyForcibly()
    }

    companion object {
        fun start(bin: String): Sandbox {
            val log = Files.createTempFile("opencharge-ffi-bench-sandbox", ".log").toFile()
            log.deleteOnExit()
            val process = ProcessBuilder(bin, "sandbox").redirectError(ProcessBuilder.Redirect.to(log)).start()
            val reader = process.inputStream.bufferedReader()
            val line = CompletableFuture.supplyAsync { reader.readLine() }.get(120, TimeUnit.SECONDS)
                ?: error("the sandbox exited before describing itself:\n${log.readText().takeLast(2000)}")
            return Sandbox(process, line)
        }
    }
}

/** A string field of a flat JSON object (the sandbox line, dev answers). */
fun field(json: String, name: String): String =
    Regex("\"$name\"\\s*:\\s*\"([^\"]*)\"").find(json)?.groupValues?.get(1) ?: error("no $name in $json")

/** An integer field of a flat JSON object. */
fun number(json: String, name: String): Long =
    Regex("\"$name\"\\s*:\\s*(\\d+)").find(json)?.groupValues?.get(1)?.toLong() ?: error("no $name in $json")

/** `text` as a JSON string literal. */
fun quote(text: String): String = buildString {
    append('"')
    for (c in text) when (c) {
        '"' -> append("\\\"")
        '\\' -> append("\\\\")
        else -> if (c < ' ') append("\\u%04x".format(c.code)) else append(c)
    }
    append('"')
}

/** Runs `count` jobs over [SEED_WORKERS] coroutines on the IO dispatcher. */
fun parallel(count: Int, job: suspend (Int) -> Unit) = runBlocking {
    val next = AtomicInteger(0)
    (1..SEED_WORKERS).map {
        async(Dispatchers.IO) {
            while (true) {
                val i = next.getAndIncrement()
                if (i >= count) break
                job(i)
            }
        }
    }.awaitAll()
}

fun main() {
    val bin = System.getProperty("opencharge.bin") ?: error("-Dopencharge.bin=<path of the opencharge binary> is required")
    val appDir: Path = Files.createTempDirectory("opencharge-ffi-bench-")
    val t0 = System.nanoTime()
    Sandbox.start(bin).use { sandbox ->
        System.err.println("sandbox at ${sandbox.gatewayUrl} (%.1f s)".format((System.nanoTime() - t0) / 1e9))
        val config = WalletConfig(
            gatewayUrl = sandbox.gatewayUrl,
            dataDir = appDir.toString(),
            gatewayOcid = sandbox.gatewayOcid.toULong(),
            directory = listOf(DirectoryEntry(sandbox.merchantOcid.toULong(), sandbox.merchantMetadataUrl)),
            allowInsecureLoopback = true,
        )
        val wallet = Wallet.open(config, null)
        val account = sandbox.post("${sandbox.gatewayUrl}/dev/accounts", """{"name":"ffi-bench"}""")
        runBlocking { wallet.registerDevice(field(account, "enrollmentCode")) }
        sandbox.post("${sandbox.gatewayUrl}/dev/accounts/${field(account, "accountId")}/fund",
            """{"currency":"USD","amount":"10000.00"}""")

        // Seed: 1 000 real payments (session, signed order posted to it, prompt fetched and
        // verified, confirm with proof verification; the receipt is stored locally).
        val seedStart = System.nanoTime()
        parallel(RECEIPTS) {
            val session = wallet.createPaymentSession()
            sandbox.postOrder(session.qrPayload)
            wallet.fetchPrompts()
            val receipt = wallet.confirm(session.sessionId)
            check(receipt.status == PaymentStatus.PAID && receipt.proofVerified) { "payment not paid: $receipt" }
        }
        System.err.println("seeded $RECEIPTS payments in %.1f s".format((System.nanoTime() - seedStart) / 1e9))
        // Then 100 prompts left pending (orders posted to fresh sessions, fetched, verified).
        val sessions = (1..PROMPTS).map { runBlocking { wallet.createPaymentSession() } }
        parallel(PROMPTS) { sandbox.postOrder(sessions[it].qrPayload) }
        runBlocking { wallet.fetchPrompts() }
        check(wallet.pendingPrompts().size == PROMPTS) { "expected $PROMPTS pending prompts, got ${wallet.pendingPrompts().size}" }
        fun allHistory(): Int {
            var before: String? = null
            var seen = 0
            do {
                val page = wallet.history(HistoryQuery(200u, before))
                seen += page.receipts.size
                before = page.nextCursor
            } while (before != null)
            return seen
        }
        check(allHistory() == RECEIPTS) { "expected $RECEIPTS receipts, got ${allHistory()}" }

        val qr = sessions.first().qrPayload
        System.err.println("timing (QR payload of ${qr.length} characters):")
        val rows = listOf(
            // The floor: one JNA direct call into the library with no call status and no
            // buffers (a generated API checksum function; compiled in the bindings' module).
            bench("raw JNA call (API checksum, no status/buffer)", 50_000, 50_000) {
                network.opencharge.wallet.IntegrityCheckingUniffiLib.uniffi_opencharge_wallet_checksum_method_wallet_device_id()
            },
            // What every binding call allocates at least once: a JNA Structure for its call
            // status (native memory plus reflective field layout).
            bench("new call-status JNA Structure", 20_000, 20_000) {
                network.opencharge.wallet.UniffiRustCallStatus.ByValue()
            },
            bench("deviceId()", 20_000, 20_000) { wallet.deviceId() },
            bench("registration() (2 SQLite reads)", 5_000, 5_000) { wallet.registration() },
            bench("syncOutbox() (suspend, empty outbox)", 2_000, 2_000) { runBlocking { wallet.syncOutbox() } },
            bench("renderQrSvg(qr, 8)", 500, 500) { renderQrSvg(qr, 8u) },
            bench("renderQrPng(qr, 8)", 300, 300) { renderQrPng(qr, 8u) },
            bench("renderQrMatrix(qr)", 500, 500) { renderQrMatrix(qr) },
            bench("pendingPrompts() with $PROMPTS prompts", 100, 100) { wallet.pendingPrompts() },
            bench("history(limit 50) of $RECEIPTS", 300, 300) { wallet.history(HistoryQuery(50u, null)) },
            bench("history, all $RECEIPTS in pages of 200", 30, 30) { allHistory() },
        )
        wallet.shutdown()
        wallet.close()
        println()
        println("%-46s %8s %14s %14s".format("call (through the Kotlin bindings)", "calls", "median ns/call", "best ns/call"))
        for (row in rows) {
            println("%-46s %8d %14.0f %14.0f".format(row.name, row.calls, row.median, row.best))
        }
        println()
        println("7 rounds per call after as many untimed warm-up calls; JVM ${System.getProperty("java.version")}, " +
            "${Runtime.getRuntime().availableProcessors()} CPUs; library ${System.getProperty("uniffi.component.opencharge_wallet.libraryOverride")}")
    }
    appDir.toFile().deleteRecursively()
}
