import Attestation
import CoordinatorCore
import Foundation
import CoordinatorTesting
import Testing

/// Holds collateral requests while closed: an activation waits there, after its checks began
/// and before it is verified and issued, for as long as a test needs.
actor CollateralGate {
    private var closed = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private(set) var arrivals = 0

    func close() { closed = true }

    func open() {
        closed = false
        for continuation in waiting { continuation.resume() }
        waiting = []
    }

    func pass() async {
        arrivals += 1
        if closed { await withCheckedContinuation { waiting.append($0) } }
    }

    /// Waits (by deadline, yielding) until `count` requests arrived.
    func waitForArrivals(_ count: Int, within seconds: Double = 30) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while arrivals < count {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

struct GatedCollateralProvider: CollateralProvider {
    let collateral: Collateral
    let gate: CollateralGate

    func collateral(for quote: Quote) async throws(AttestationError) -> Collateral {
        await gate.pass()
        return collateral
    }
}

/// An activation is checked and issued under one manifest: an update committed while it runs
/// refuses it as retryable, and nothing is issued or counted.
@Suite struct ActivationEpochTests {
    static func fixture(gate: CollateralGate) async throws -> UserFixture {
        let fixture = try await UserFixture.make(collateralProvider: {
            GatedCollateralProvider(collateral: $0.collateral, gate: gate)
        })
        try await fixture.setMarbleSecrets()
        return fixture
    }

    /// Starts an activation of the manifest's enclave (SVN 2), holds it at the collateral, runs
    /// `change`, releases it and returns how it ended.
    static func activation(
        _ fixture: UserFixture, gate: CollateralGate, during change: () async throws -> Void
    ) async throws -> Result<ActivationParameters, CoordinatorError> {
        await gate.close()
        let before = await gate.arrivals
        let running = Task { () async -> Result<ActivationParameters, CoordinatorError> in
            do { return .success(try await fixture.activate()) } catch let error as CoordinatorError {
                return .failure(error)
            } catch { return .failure(CoordinatorError(.internalFailure, "\(error)")) }
        }
        try await gate.waitForArrivals(before + 1)
        try await change()
        await gate.open()
        return await running.value
    }

    @Test func aSecurityVersionRaiseDuringActivationRefusesTheOldMarble() async throws {
        let gate = CollateralGate()
        let fixture = try await Self.fixture(gate: gate)
        defer { Task { await fixture.store.close() } }
        let result = try await Self.activation(fixture, gate: gate) {
            _ = try await fixture.coordinator.update(UpdateTests.raiseTo3, by: try await fixture.user(fixture.admin))
        }
        guard case .failure(let error) = result else {
            Issue.record("the SVN 2 marble was activated after SVN 3 was required")
            return
        }
        #expect(error.code == .manifestChanged)
        #expect(error.message.contains("retry"))
        #expect(try await fixture.coordinator.activationCount("backend") == 0)
        // Retried under the new policy, the old marble is refused for what it is; a new one activates.
        await expectCode(.attestation) { _ = try await fixture.activate() }
        var newer = fixture.enclave
        newer.securityVersion = 3
        _ = try await fixture.activate(newer)
        #expect(try await fixture.coordinator.activationCount("backend") == 1)
    }

    @Test func aFullUpdateDuringActivationRefusesIt() async throws {
        let gate = CollateralGate()
        let fixture = try await Self.fixture(gate: gate)
        defer { Task { await fixture.store.close() } }
        let result = try await Self.activation(fixture, gate: gate) {
            _ = try await fixture.coordinator.update(
                fixture.manifest(greeting: "version 2"), by: try await fixture.user(fixture.admin))
        }
        guard case .failure(let error) = result else {
            Issue.record("an activation checked under the old manifest was issued under the new one")
            return
        }
        #expect(error.code == .manifestChanged)
        #expect(try await fixture.coordinator.activationCount("backend") == 0)
        #expect(try await fixture.activate().env["GREETING"] == Array("version 2".utf8))
    }

    @Test func anActivationWithNoChangeMeanwhileGoesThrough() async throws {
        let gate = CollateralGate()
        let fixture = try await Self.fixture(gate: gate)
        defer { Task { await fixture.store.close() } }
        let result = try await Self.activation(fixture, gate: gate) {}
        #expect((try? result.get()) != nil)
        #expect(try await fixture.coordinator.activationCount("backend") == 1)
    }
}
