import CoordinatorTesting
import Foundation
import Testing

/// Whether this machine lets tests mount a small tmpfs (root with CAP_SYS_ADMIN).
enum MountProbe {
    static let canMount: Bool = {
        let point = FileManager.default.temporaryDirectory.appendingPathComponent("mount-probe-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: point, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: point) }
        guard
            let mounted = try? ProcessRunner.runBlocking(
                URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=1m", "tmpfs", point.path]),
            mounted.status == 0
        else { return false }
        _ = try? ProcessRunner.runBlocking(URL(fileURLWithPath: "/bin/umount"), [point.path])
        return true
    }()
}

/// The seal directory fills up or turns read-only under a running Coordinator: writes are
/// refused with a clear 503, nothing is corrupted, and once the disk is fixed the state (with
/// every acknowledged write) is intact. Needs a small tmpfs (mount); skipped where mounting is
/// not allowed.
@Suite(.enabled(if: MountProbe.canMount, "mounting a tmpfs is not allowed here"))
struct StorageFaultTests {
    static func mount(_ arguments: [String]) async throws {
        let result = try await ProcessRunner.run(URL(fileURLWithPath: "/bin/mount"), arguments)
        try #require(result.status == 0, "mount \(arguments): \(result.stderr)")
    }

    @Test func aFullOrReadOnlySealDirectoryRefusesWritesClearlyAndCorruptsNothing() async throws {
        let coordinator = try CoordinatorProcess()
        let seal = coordinator.sealDirectory
        try FileManager.default.createDirectory(at: seal, withIntermediateDirectories: true)
        try await Self.mount(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", seal.path])
        do {
            try await Self.faults(coordinator)
        } catch {
            _ = await coordinator.stop()
            _ = try? await ProcessRunner.run(URL(fileURLWithPath: "/bin/umount"), ["-l", seal.path])
            throw error
        }
        _ = try? await ProcessRunner.run(URL(fileURLWithPath: "/bin/umount"), ["-l", seal.path])
    }

    static func faults(_ coordinator: CoordinatorProcess) async throws {
        let seal = coordinator.sealDirectory
        try await coordinator.start()
        let setup = try CrashTests.Setup(coordinator, maxActivations: 0)
        try await setup.configure(coordinator)
        let writer = setup.files["writer"]
        #expect(
            try await coordinator.request(
                "POST", "/api/v2/secrets", body: CrashTests.Setup.keyBody(1), identity: writer
            ).status == 200)

        // Disk full: fill the tmpfs to the last byte.
        let filler = seal.appendingPathComponent("filler")
        _ = try await ProcessRunner.run(
            URL(fileURLWithPath: "/bin/dd"), ["if=/dev/zero", "of=\(filler.path)", "bs=64k"])
        var full: (status: Int, json: [String: Any]) = (0, [:])
        // SQLite may absorb a write or two in pages it already has; the disk stays full.
        for value in UInt32(2)...UInt32(40) {
            full = try await coordinator.request(
                "POST", "/api/v2/secrets", body: CrashTests.Setup.keyBody(value), identity: writer)
            if full.status != 200 { break }
        }
        #expect(full.status == 503, "\(full.json)")
        #expect((full.json["message"] as? String)?.contains("state store") == true, "\(full.json)")
        try FileManager.default.removeItem(at: filler)
        let afterSpace = try await coordinator.request(
            "POST", "/api/v2/secrets", body: CrashTests.Setup.keyBody(100), identity: writer)
        #expect(afterSpace.status == 200, "writes work again once there is space: \(afterSpace.json)")
        #expect(try await setup.currentKey(coordinator) == 100)

        // Read-only (remounted while the Coordinator is stopped): it either serves and refuses
        // writes with the reason, or refuses to start naming the directory; either way nothing changes.
        #expect(await coordinator.stop() == 0)
        try await Self.mount(["-o", "remount,ro", seal.path])
        do {
            try await coordinator.start()
            let readOnly = try await coordinator.request(
                "POST", "/api/v2/secrets", body: CrashTests.Setup.keyBody(200), identity: writer)
            #expect(readOnly.status == 503, "\(readOnly.json)")
            #expect((readOnly.json["message"] as? String)?.contains("state store") == true, "\(readOnly.json)")
            #expect(await coordinator.stop() == 0)
        } catch {
            #expect(await coordinator.exitStatus() != 0)
            #expect(coordinator.log().contains(seal.path), "\(coordinator.log().suffix(800))")
        }
        try await Self.mount(["-o", "remount,rw", seal.path])

        // Restarted on the repaired disk: the state opens, the log verifies, the acknowledged value is there.
        try await coordinator.start()
        #expect(try await setup.currentKey(coordinator) == 100)
        let logged = try await setup.verifiedLog(coordinator)
        #expect(logged.count >= 3, "the initial secrets, 1 and 100")
        #expect(await coordinator.stop() == 0)

        // Starting on a read-only seal directory without state: a clear error, not a crash loop.
        let fresh = try CoordinatorProcess()
        try FileManager.default.createDirectory(at: fresh.sealDirectory, withIntermediateDirectories: true)
        try await Self.mount(["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", fresh.sealDirectory.path])
        await #expect(throws: (any Error).self) { try await fresh.start() }
        #expect(await fresh.exitStatus() != 0)
        #expect(fresh.log().contains(fresh.sealDirectory.path), "\(fresh.log().suffix(800))")
        _ = try? await ProcessRunner.run(URL(fileURLWithPath: "/bin/umount"), ["-l", fresh.sealDirectory.path])
    }
}
