// Package sevsnp is go-expat's AMD SEV-SNP attester: it asks the AMD secure
// processor (AMD-SP), through the guest kernel, for an ATTESTATION_REPORT
// whose REPORT_DATA is the connection's challenge, and returns it wrapped in
// a CMW record of media type cmw.MediaTypeSEVSNP (structure in package
// attester/sevsnp/wire).
//
// # What is implemented
//
//   - REPORT_DATA = attester.Challenge.ReportData64(), i.e.
//     SHA-512(binding || AIK_pub_hash) (the layout documented in package
//     attester).
//   - Two backends, chosen explicitly by the caller (never auto-detected):
//     NewDeviceAttester issues SNP_GET_REPORT / SNP_GET_EXT_REPORT ioctls on
//     a Device (OpenDevice opens /dev/sev-guest), and NewTSMAttester uses
//     Linux's configfs-tsm report interface through an injectable
//     go-configfs-tsm client (linuxtsm.MakeClient() on a real guest).
//   - Extended reports: the certificate table the host provides (VCEK or
//     VLEK, ASK, ARK) is included, re-laid out canonically, unless
//     Options.OmitCertTable is set. A host that provides none yields a bare
//     report; the verifier then fetches the VCEK from AMD's KDS.
//   - The VMPL at which the report is requested (Options.VMPL).
//   - Device throttling (T27): EAGAIN/EBUSY/EINTR/ETIMEDOUT, the host's
//     "busy" answer and configfs generation races are retried with bounded,
//     jittered exponential backoff that honours ctx; when the attempts or the
//     deadline run out the error is an *attester.DeviceError with Retryable
//     set (errors.Is(err, attester.ErrThrottled) for throttling); the policy
//     is Options.Retry. A device call that never
//     returns cannot be interrupted, but Attest returns at ctx's deadline and
//     later calls wait (again bounded by their ctx) until the device is free:
//     requests to the device are serialized, one at a time.
//
// # What is not
//
// Derived keys, the SVSM attestation protocol (vTPM / services manifests),
// and any detection of the platform: a caller on a non-SNP machine gets an
// error from OpenDevice or from the TSM client, never a silent fallback.
//
// This package imports go-sev-guest's abi and client/linuxabi packages
// only; it does not import go-sev-guest/client, which registers
// command-line flags.
package sevsnp
