import Foundation
import Synchronization

/// A pair of FIFOs served by a thread of its own, as a kernel or Gramine pseudo-file pair
/// behaves: each request written to `request` (up to the writer's close) is answered by one
/// response read from `response`. Opening a FIFO blocks, which must not hold a cooperative thread.
public final class FIFOResponder: Sendable {
    let requestPath: String
    let responsePath: String
    private let answer: @Sendable ([UInt8]) -> [UInt8]
    private let stopped = Mutex(false)
    private let requests = Mutex<[[UInt8]]>([])

    /// Every request received so far.
    public var received: [[UInt8]] { requests.withLock { $0 } }

    /// Makes both FIFOs and starts serving; `answer` turns a request into its response.
    public init(request: URL, response: URL, answer: @escaping @Sendable ([UInt8]) -> [UInt8]) throws {
        requestPath = request.path
        responsePath = response.path
        self.answer = answer
        for path in [requestPath, responsePath] where mkfifo(path, 0o600) != 0 {
            throw LocalPCCS.Failure(description: "mkfifo \(path) failed")
        }
        // A reader that goes away must not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    private func serve() {
        while !stopped.withLock({ $0 }) {
            let input = open(requestPath, O_RDONLY)
            guard input >= 0 else { return }
            var request: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 256)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                request += buffer[0..<count]
            }
            close(input)
            if stopped.withLock({ $0 }) { return }
            requests.withLock { $0.append(request) }
            let response = answer(request)
            let output = open(responsePath, O_WRONLY)
            guard output >= 0 else { return }
            var offset = 0
            while offset < response.count {
                let written = response[offset...].withUnsafeBytes { write(output, $0.baseAddress, $0.count) }
                guard written > 0 else { break }
                offset += written
            }
            close(output)
        }
    }

    /// Ends the serving thread (it may be waiting for a request).
    public func stop() {
        stopped.withLock { $0 = true }
        let fd = open(requestPath, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
    }
}
