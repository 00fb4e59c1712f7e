//go:build !race

package sevsnp_test

const raceEnabled = false
