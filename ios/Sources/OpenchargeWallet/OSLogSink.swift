// OSLogSink: routes the wallet core's log records to the unified logging system (os.Logger).

import Foundation
import os

/// A `LogSink` that writes the core's records to `os.Logger` (Console.app, `log stream`).
/// Install it once at start: `try setLogSink(sink: OSLogSink(), maxLevel: .info)`.
///
/// Levels: `.error` -> `OSLogType.error`, `.warn` -> `.default` (os_log has no warning level of
/// its own; `Logger.warning` is an alias of `.error`, which would mark handled problems as
/// failures), `.info` -> `.info`, `.debug` and `.trace` -> `.debug`. The core never logs secrets
/// or whole payloads, so messages are logged as public (readable in Console without a profile).
/// The core's module (e.g. `opencharge_wallet::events`) prefixes each message.
public final class OSLogSink: LogSink, @unchecked Sendable {
    private let logger: Logger

    /// A sink logging under `subsystem` and `category`.
    public init(subsystem: String = "network.opencharge.wallet", category: String = "core") {
        self.logger = Logger(subsystem: subsystem, category: category)
    }

    /// Writes one record of the core.
    public func log(level: LogLevel, target: String, message: String) throws {
        logger.log(level: OSLogSink.osLogType(level), "\(target, privacy: .public): \(message, privacy: .public)")
    }

    /// The `OSLogType` a core level is written with.
    public static func osLogType(_ level: LogLevel) -> OSLogType {
        switch level {
        case .error:
            return .error
        case .warn:
            return .default
        case .info:
            return .info
        case .debug, .trace:
            return .debug
        }
    }
}
