package main

// peersSection cites published figures of other attested-TLS systems, with
// their sources. Figures from other machines and other designs are not
// comparable with ours one to one: they are here to show orders of
// magnitude, not to rank.
const peersSection = `## Peers' published figures

Figures published by others, on their machines and in their designs; they
are not comparable one to one with the ratios above (other hardware, real
TEEs instead of test kits, other protocols), only as orders of magnitude.

| system | published figure | source |
|---|---|---|
| Flashbots attested TLS (EKM session binding, Intel TDX on GCP) | generating one TDX quote took about 39 ms, and concurrent quote requests on one host were served one after the other (two at once took about twice one); this is why they moved attestation out of the per-connection path | https://collective.flashbots.net/t/attested-tls-protocol-redesign-for-scale-and-performance/5794 (figure as summarized at https://news.ojobit.com/story/flashbots-nested-tls-tdx-attestation-a6b590) |

What this means for go-expat: with real TDX hardware the Attester's quote,
not the protocol, dominates the cost of a fresh per-connection attestation
(39 ms against the sub-millisecond EA round measured above). The reusable
key-bound passport (verifier/ear.ReusablePassport) is go-expat's answer: the
quote is taken once per passport lifetime, not per connection, and the
connection is still bound through the EA key.

Searched and not found (so not cited): published per-connection figures for
Gramine RA-TLS, Edgeless aTLS/MarbleRun, Fraunhofer CMC, librats/Inclavare
and TNG in the sources this project can reach.
`
