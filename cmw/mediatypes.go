package cmw

// Media types of the CMW records go-expat produces and consumes. Backends
// wrap their Evidence with exactly these types, and verifiers dispatch on
// them. Types under vnd.go-expat are this project's own encodings (each
// backend's package documents the CBOR structure); the others are the
// registered or de-facto types their ecosystems use.
const (
	// MediaTypeTPM2 is a TPM 2.0 quote bundle (attester/tpm).
	MediaTypeTPM2 = "application/vnd.go-expat.tpm2-quote+cbor"
	// MediaTypeSEVSNP is an AMD SEV-SNP attestation report with its
	// optional certificate table (attester/sevsnp).
	MediaTypeSEVSNP = "application/vnd.go-expat.sev-snp-report+cbor"
	// MediaTypeTDX is an Intel TDX quote (v4 or v5) (attester/tdx).
	MediaTypeTDX = "application/vnd.go-expat.tdx-quote+cbor"
	// MediaTypeCCA is an Arm CCA attestation token (platform + realm
	// collection), the type Veraison uses for the CCA scheme.
	MediaTypeCCA = `application/eat-collection; profile="http://arm.com/CCA-SSD/1.0.0"`
	// MediaTypeEAR is an EAT Attestation Result (EAR) JWT, as issued by
	// Veraison and by verifier/ear (passport model).
	MediaTypeEAR = `application/eat+jwt; eat_profile="tag:github.com,2023:veraison/ear"`
	// MediaTypeTestKit is the Evidence of the test-only software attester in
	// expat/expattest/testkit: an EAT claims set in COSE_Sign1, signed by a key that
	// nothing trusts unless a test says so.
	MediaTypeTestKit = "application/vnd.go-expat.test-only-eat+cwt"
)
