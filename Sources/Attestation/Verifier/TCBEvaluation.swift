/// Selects the platform's TCB level in a TCB Info as Intel's library does: the first level whose
/// SGX components and PCE SVN the PCK certificate meets, and for TDX whose TDX components
/// TEE_TCB_SVN meets (from index 2 when the TDX module's major version is set, since the module
/// identity rates bytes 0 and 1 then).
struct TCBEvaluation: Sendable {
    let tcbInfo: TCBInfo

    init(tcbInfo: TCBInfo) throws(AttestationError) {
        for level in tcbInfo.levels where !TCBStatus.platformStatuses.contains(level.status) {
            throw AttestationError(.malformedCollateral, "the TCB Info has the unknown status \(level.status)")
        }
        self.tcbInfo = tcbInfo
    }

    private func meetsSGX(_ level: TCBInfo.Level, _ pck: PCKExtension) -> Bool {
        guard pck.pceSVN >= level.pceSVN, level.sgxComponents.count == 16 else { return false }
        return zip(pck.tcbComponents, level.sgxComponents).allSatisfy { $0 >= $1 }
    }

    func sgxLevel(_ pck: PCKExtension) throws(AttestationError) -> TCBInfo.Level {
        guard let level = tcbInfo.levels.first(where: { meetsSGX($0, pck) }) else {
            throw AttestationError(
                .noMatchingTCBLevel,
                "no TCB level of FMSPC \(hexString(tcbInfo.fmspc)) covers this platform's TCB components and PCE SVN")
        }
        return level
    }

    /// The TDX module identity for the module's major version must match MRSIGNERSEAM and SEAMATTRIBUTES.
    func checkTDXModule(_ report: TDReport) throws(AttestationError) {
        let major = report.teeTCBSVN[1]
        guard var expected = tcbInfo.tdxModule else {
            throw AttestationError(.malformedCollateral, "the TDX TCB Info has no tdxModule")
        }
        if major > 0 {
            guard let identity = moduleIdentity(major: major) else {
                throw AttestationError(
                    .tdxModuleMismatch, "the TCB Info has no identity for TDX module major version \(major)")
            }
            expected = identity
        }
        guard report.mrSignerSeam == expected.mrSigner else {
            throw AttestationError(.tdxModuleMismatch, "MRSIGNERSEAM is not the TDX module identity's signer")
        }
        for (index, actual) in report.seamAttributes.enumerated() {
            let mask = expected.attributesMask[index]
            if actual & mask != expected.attributes[index] & mask || actual & ~mask != 0 {
                throw AttestationError(.tdxModuleMismatch, "SEAMATTRIBUTES do not match the TDX module identity")
            }
        }
    }

    private func moduleIdentity(major: UInt8) -> TCBInfo.ModuleIdentity? {
        let id = "TDX_" + String(major, radix: 16, uppercase: true).leftPadded(to: 2)
        return tcbInfo.tdxModuleIdentities.first { $0.id.uppercased() == id }
    }

    func tdx(_ pck: PCKExtension, teeTCBSVN: [UInt8], qe: (status: TCBStatus, advisories: [String]))
        throws(AttestationError) -> (
            status: TCBStatus, advisories: [String], platform: TCBStatus
        )
    {
        let major = teeTCBSVN[1]
        let start = major > 0 ? 2 : 0
        guard
            let level = tcbInfo.levels.first(where: { level in
                guard meetsSGX(level, pck), let tdx = level.tdxComponents, tdx.count == 16 else { return false }
                return (start..<16).allSatisfy { teeTCBSVN[$0] >= tdx[$0] }
            })
        else {
            throw AttestationError(
                .noMatchingTCBLevel,
                "no TCB level of FMSPC \(hexString(tcbInfo.fmspc)) covers this platform and TEE_TCB_SVN \(hexString(teeTCBSVN))"
            )
        }
        var components: [TCBStatus] = []
        var advisories = level.advisoryIDs
        if major > 0 {
            guard let identity = moduleIdentity(major: major),
                let moduleLevel = identity.levels.first(where: { teeTCBSVN[0] >= $0.isvSVN })
            else {
                throw AttestationError(
                    .noMatchingTCBLevel, "no TDX module TCB level covers module version \(major).\(teeTCBSVN[0])")
            }
            guard TCBStatus.tdxModuleStatuses.contains(moduleLevel.status) else {
                throw AttestationError(
                    .malformedCollateral, "the TDX module identity has the unknown status \(moduleLevel.status)")
            }
            components.append(moduleLevel.status)
            advisories += moduleLevel.advisoryIDs
        }
        components.append(qe.status)
        advisories += qe.advisories
        return (TCBStatus.converge(platform: level.status, components: components), advisories, level.status)
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
