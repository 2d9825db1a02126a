package reward

import (
	"math/big"
	"testing"
)

func TestIntRoot(t *testing.T) {
	for _, n := range []int64{3, 5, 7, 64} {
		for _, bits := range []uint{1, 10, 60, 200, 3000, 30000} {
			base := new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), bits/uint(n)+1), big.NewInt(3))
			v := new(big.Int).Exp(base, big.NewInt(n), nil)
			if r, ok := intRoot(v, n); !ok || r.Cmp(base) != 0 {
				t.Errorf("root %d of %d-bit power: %v %v", n, v.BitLen(), ok, r)
			}
			if _, ok := intRoot(new(big.Int).Add(v, big.NewInt(1)), n); ok {
				t.Errorf("root %d of a non-power reported exact", n)
			}
		}
	}
}
