import Logging
import Metrics
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Gives the memory of closed connections back to the system after a burst of them.
///
/// glibc's allocator keeps freed memory in its arenas: after thousands of connections were
/// opened and closed (a flood of stalled ones, a burst of activations) the process stayed tens of
/// MiB larger than before (issue 15 measured 63 → 124 MiB after one flood of 5,000, debug build),
/// although nothing of them was still referenced: `malloc_trim(0)` brought it back to 80 MiB.
/// Every ``interval``, when at least ``threshold`` connections closed since the last look, this
/// calls `malloc_trim(0)`, which returns the free pages of every arena.
final class HeapTrimmer: Service, Sendable {
    static let interval: Duration = .seconds(10)
    static let threshold = 256
    private let closed = Atomic<Int>(0)
    private let trims = Counter(label: "coordinator_heap_trims_total")
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Counts one closed connection (a listener's ``ConnectionLimit`` calls it).
    func connectionClosed() {
        closed.wrappingAdd(1, ordering: .relaxed)
    }

    /// Trims the heap if enough connections closed since the last call; returns whether it did.
    @discardableResult
    func trimIfNeeded() -> Bool {
        let count = closed.load(ordering: .relaxed)
        guard count >= Self.threshold else { return false }
        closed.wrappingSubtract(count, ordering: .relaxed)
        _ = Self.mallocTrim?(0)
        trims.increment()
        logger.debug("returned free heap memory to the system", metadata: ["closedConnections": "\(count)"])
        return true
    }

    /// glibc's `malloc_trim`, looked up at run time: `<malloc.h>` is not in Swift's Glibc module
    /// (nil with another C library, where trimming is left to it).
    private static let mallocTrim: (@convention(c) (Int) -> CInt)? = {
        #if canImport(Glibc)
            guard let symbol = dlsym(nil, "malloc_trim") else { return nil }
            return unsafeBitCast(symbol, to: (@convention(c) (Int) -> CInt).self)
        #else
            return nil
        #endif
    }()

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: Self.interval) }
            } catch {
                return
            }
            trimIfNeeded()
        }
    }
}
