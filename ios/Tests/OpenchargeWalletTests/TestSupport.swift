// Test support: the sandbox the CI started (`opencharge sandbox`), its dev endpoints over HTTP,
// temporary data directories, and waiting for wallet events without hanging forever.

import Foundation
import XCTest
import OpenchargeWallet

/// A failure of the test machinery itself (not of the code under test).
enum TestFailure: Error, CustomStringConvertible {
    case timeout(String)
    case streamEnded(String)
    case http(String)

    var description: String {
        switch self {
        case .timeout(let what):
            return "timed out waiting for \(what)"
        case .streamEnded(let what):
            return "the event stream ended before \(what)"
        case .http(let what):
            return what
        }
    }
}

/// The sandbox started by the CI: the one JSON line `opencharge sandbox` printed, passed in
/// `OPENCHARGE_SANDBOX_JSON` (or a file named by `OPENCHARGE_SANDBOX_FILE`). On a simulator,
/// pass them as `SIMCTL_CHILD_OPENCHARGE_SANDBOX_JSON`. See ios/run-tests.sh.
struct Sandbox: Decodable, Sendable {
    let gatewayUrl: String
    let gatewayOcid: Int64
    let gatewayMetadataUrl: String
    let merchantUrl: String
    let merchantOcid: Int64
    let merchantMetadataUrl: String

    /// The sandbox of this run; skips the test when none was started.
    static func fromEnvironment() throws -> Sandbox {
        let environment = ProcessInfo.processInfo.environment
        var line = environment["OPENCHARGE_SANDBOX_JSON"]
        if line == nil, let path = environment["OPENCHARGE_SANDBOX_FILE"] {
            line = try String(contentsOfFile: path, encoding: .utf8)
        }
        guard let json = line else {
            throw XCTSkip("no sandbox: start `opencharge sandbox` and set OPENCHARGE_SANDBOX_JSON (ios/run-tests.sh does)")
        }
        return try JSONDecoder().decode(Sandbox.self, from: Data(json.utf8))
    }

    /// A wallet configuration for this sandbox, with its data in `dataDir`.
    func walletConfig(dataDir: URL) -> WalletConfig {
        return WalletConfig(
            gatewayUrl: gatewayUrl,
            dataDir: dataDir.path,
            gatewayOcid: gatewayOcid,
            directory: [DirectoryEntry(ocid: merchantOcid, metadataUrl: merchantMetadataUrl)],
            allowInsecureLoopback: true
        )
    }

    /// A new gateway account, funded with `fund` USD when given: its id and enrollment code.
    func createAccount(name: String, fund: String?) async throws -> (accountId: String, enrollmentCode: String) {
        let account = try await Sandbox.post("\(gatewayUrl)/dev/accounts", ["name": name])
        guard let accountId = account["accountId"] as? String,
              let code = account["enrollmentCode"] as? String else {
            throw TestFailure.http("unexpected account answer: \(account)")
        }
        if let amount = fund {
            _ = try await Sandbox.post("\(gatewayUrl)/dev/accounts/\(accountId)/fund",
                                       ["currency": "USD", "amount": amount])
        }
        return (accountId, code)
    }

    /// A signed merchant order for `quantity` coffees at 2.50 USD: its id.
    func createOrder(quantity: Int) async throws -> String {
        let answer = try await Sandbox.post("\(merchantUrl)/dev/orders", [
            "items": [["id": "coffee", "name": "Coffee", "quantity": quantity, "price": "2.50"]],
            "currency": "USD",
        ])
        guard let orderId = answer["orderId"] as? String else {
            throw TestFailure.http("unexpected order answer: \(answer)")
        }
        return orderId
    }

    /// The merchant "scans" the wallet's QR: posts the order to the wallet's session.
    func postOrder(_ orderId: String, sessionQr: String) async throws {
        _ = try await Sandbox.post("\(merchantUrl)/dev/orders/\(orderId)/post", ["sessionQr": sessionQr])
    }

    /// The merchant's view of an order's status (`pending`, `paid`, ...).
    func orderStatus(_ orderId: String) async throws -> String {
        let view = try await Sandbox.request("GET", "\(merchantUrl)/dev/orders/\(orderId)", nil)
        guard let status = view["status"] as? String else {
            throw TestFailure.http("unexpected order view: \(view)")
        }
        return status
    }

    static func post(_ url: String, _ body: [String: Any]) async throws -> [String: Any] {
        return try await request("POST", url, body)
    }

    static func request(_ method: String, _ url: String, _ body: [String: Any]?) async throws -> [String: Any] {
        guard let target = URL(string: url) else {
            throw TestFailure.http("bad URL \(url)")
        }
        var request = URLRequest(url: target)
        request.httpMethod = method
        if let body = body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let text = String(decoding: data, as: UTF8.self)
        guard (200..<300).contains(status) else {
            throw TestFailure.http("\(method) \(url) -> HTTP \(status): \(text)")
        }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestFailure.http("\(method) \(url): not a JSON object: \(text)")
        }
        return object
    }
}

/// A fresh directory for one wallet's data; removed by `removeDataDir`.
func makeDataDir() throws -> URL {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("opencharge-wallet-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// Removes a directory made by `makeDataDir`.
func removeDataDir(_ dir: URL) {
    try? FileManager.default.removeItem(at: dir)
}

/// Runs `body`, failing with `TestFailure.timeout` if it has not finished after `seconds`
/// (a guard against hanging, not a measurement).
func withTimeout<T: Sendable>(
    _ seconds: Double,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    return try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask {
            return try await body()
        }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
            throw TestFailure.timeout(what)
        }
        guard let first = try await group.next() else {
            throw TestFailure.timeout(what)
        }
        group.cancelAll()
        return first
    }
}

/// The first event of `events` for which `pick` returns a value (earlier events are dropped).
func nextEvent<T: Sendable>(
    _ events: AsyncStream<WalletEvent>,
    _ what: String,
    _ pick: @escaping @Sendable (WalletEvent) -> T?
) async throws -> T {
    return try await withTimeout(30, what) {
        for await event in events {
            if let value = pick(event) {
                return value
            }
        }
        throw TestFailure.streamEnded(what)
    }
}

/// Polls `condition` until it holds, failing after `seconds` (for effects that happen in the
/// background, like a merchant webhook).
func eventually(_ seconds: Double, _ what: String, _ condition: @escaping @Sendable () async throws -> Bool) async throws {
    _ = try await withTimeout(seconds, what) {
        while !(try await condition()) {
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        return true
    }
}

/// Asserts that `body` throws a `WalletError` accepted by `check`.
func assertWalletError<T>(
    _ body: () async throws -> T,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ check: (WalletError) -> Bool
) async {
    do {
        let value = try await body()
        XCTFail("expected a WalletError, got \(value)", file: file, line: line)
    } catch let error as WalletError {
        XCTAssertTrue(check(error), "unexpected WalletError \(error)", file: file, line: line)
    } catch {
        XCTFail("expected a WalletError, got \(error)", file: file, line: line)
    }
}
