package analyze

import (
	"crypto/des"
	"encoding/binary"
	"testing"
)

// With salt ".." (no E-box swaps) one round of crypt is plain DES, so the
// block cipher can be checked against the standard library.
func TestDESMatchesStandardLibrary(t *testing.T) {
	for _, key := range []uint64{0, 0x133457799BBCDFF1, 0x0123456789abcdef, 0xfedcba9876543210} {
		for _, pt := range []uint64{0, 0x0123456789ABCDEF, 0xffffffffffffffff} {
			c, _ := des.NewCipher(binary.BigEndian.AppendUint64(nil, key))
			var want [8]byte
			c.Encrypt(want[:], binary.BigEndian.AppendUint64(nil, pt))
			ks := desSubkeys(key)
			e := desE
			if got := desEncrypt(pt, &ks, &e); got != binary.BigEndian.Uint64(want[:]) {
				t.Errorf("key %x pt %x: got %x want %x", key, pt, got, want)
			}
		}
	}
}

// Vectors from the system crypt(3) (perl -e 'print crypt("password","ab")').
func TestDESCryptVectors(t *testing.T) {
	for _, v := range []struct{ pw, want string }{
		{"password", "abJnggxhB/yWI"}, {"password", "./xZjzHv5vzVE"}, {"password", "ZziFATVXHo2.6"},
		{"admin", "abOV.DfJmdnYw"}, {"admin", "./nlIXYriZaB2"}, {"admin", "ZzZz/KvKE0TFc"},
		{"xc3511", "absxcfbgXtb3o"}, {"root", "ab6TRGT20sY26"}, {"root", "./qKynggNIogA"}, {"root", "ZzKmTqU6v62UQ"},
	} {
		if got := desCrypt(v.pw, v.want[:2]); got != v.want {
			t.Errorf("desCrypt(%q, %q) = %q, want %q", v.pw, v.want[:2], got, v.want)
		}
	}
}
