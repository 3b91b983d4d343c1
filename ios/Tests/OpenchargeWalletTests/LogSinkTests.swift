// Log sinks: the core's records reach a Swift LogSink, and OSLogSink writes to os.Logger with
// the documented level mapping.

import Foundation
import OSLog
import XCTest
import OpenchargeWallet

/// A LogSink that keeps every record.
final class RecordingLogSink: LogSink, @unchecked Sendable {
    private let lock = NSLock()
    private var kept: [(LogLevel, String, String)] = []

    var records: [(LogLevel, String, String)] {
        lock.lock()
        defer { lock.unlock() }
        return kept
    }

    func log(level: LogLevel, target: String, message: String) throws {
        lock.lock()
        kept.append((level, target, message))
        lock.unlock()
    }
}

final class LogSinkTests: XCTestCase {
    override func tearDown() {
        clearLogSink()
    }

    func testTheCoresRecordsReachTheSink() async throws {
        let sink = RecordingLogSink()
        try setLogSink(sink: sink, maxLevel: .info)
        let dataDir = try makeDataDir()
        defer { removeDataDir(dataDir) }
        let wallet = try await Wallet.open(
            config: WalletConfig(gatewayUrl: "https://wallet.example/opencharge", dataDir: dataDir.path),
            keyStore: nil)
        XCTAssertTrue(try wallet.deviceId().hasPrefix("dev_"))
        let opened = sink.records.filter { $0.2.contains("wallet opened") }
        XCTAssertFalse(opened.isEmpty, "records: \(sink.records)")
        XCTAssertTrue(opened.allSatisfy { $0.0 == .info && $0.1.hasPrefix("opencharge_wallet") })
        XCTAssertFalse(sink.records.contains { $0.0 == .debug || $0.0 == .trace }, "maxLevel is respected")
    }

    func testLevelMapping() {
        XCTAssertEqual(OSLogSink.osLogType(.error), .error)
        XCTAssertEqual(OSLogSink.osLogType(.warn), .default)
        XCTAssertEqual(OSLogSink.osLogType(.info), .info)
        XCTAssertEqual(OSLogSink.osLogType(.debug), .debug)
        XCTAssertEqual(OSLogSink.osLogType(.trace), .debug)
    }

    /// A record written through OSLogSink can be read back from the unified log of this
    /// process, under the sink's subsystem, with its text public.
    func testOSLogSinkWritesToTheUnifiedLog() throws {
        let subsystem = "network.opencharge.wallet.tests.\(UUID().uuidString)"
        let marker = "marker-\(UUID().uuidString)"
        let sink = OSLogSink(subsystem: subsystem, category: "test")
        try sink.log(level: .warn, target: "opencharge_wallet::test", message: marker)

        let store = try OSLogStore(scope: .currentProcessIdentifier)
        let entries = try store.getEntries(
            at: store.position(timeIntervalSinceLatestBoot: 0),
            matching: NSPredicate(format: "subsystem == %@", subsystem))
        let messages = entries.compactMap { ($0 as? OSLogEntryLog)?.composedMessage }
        XCTAssertTrue(messages.contains("opencharge_wallet::test: \(marker)"), "found: \(messages)")
    }
}
