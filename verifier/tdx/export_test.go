package tdx

// DisableChainCache turns off v's cache of verified PCK chains (before
// first use): the uncached baseline of the benchmarks, and the other side
// of the cache's differential test.
func (v *Verifier) DisableChainCache() { v.chains.MaxEntries = -1 }

// ChainCacheLen returns how many verified PCK chains v keeps.
func (v *Verifier) ChainCacheLen() int { return v.chains.Len() }
