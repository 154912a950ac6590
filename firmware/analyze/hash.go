package analyze

import (
	"bufio"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"strconv"
	"strings"

	gcrypt "github.com/GehirnInc/crypt"
	"github.com/GehirnInc/crypt/apr1_crypt"
	"github.com/GehirnInc/crypt/md5_crypt"
	"github.com/GehirnInc/crypt/sha256_crypt"
	"github.com/GehirnInc/crypt/sha512_crypt"
	"github.com/go-crypt/x/yescrypt"
	"golang.org/x/crypto/bcrypt"
)

//go:embed data/*.txt
var dictFS embed.FS

// Word is one dictionary candidate and the list it came from.
type Word struct {
	Password string
	List     string
}

// Dictionary returns the built-in password candidates, most likely first:
// Mirai's list, well-known vendor firmware root passwords, then
// RouterSploit's defaults.
func Dictionary() []Word {
	var out []Word
	seen := map[string]bool{}
	for _, l := range []struct{ file, name string }{
		{"data/mirai-passwords.txt", "mirai"},
		{"data/vendor-passwords.txt", "vendor-firmware"},
		{"data/routersploit-passwords.txt", "routersploit"},
	} {
		b, err := dictFS.ReadFile(l.file)
		if err != nil {
			panic("embedded dictionary missing: " + err.Error())
		}
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if p := sc.Text(); !seen[p] {
				seen[p] = true
				out = append(out, Word{p, l.name})
			}
		}
	}
	return out
}

// hashScheme names the crypt scheme of a password field, or "" when the
// field holds no usable hash (empty, locked, placeholder).
func hashScheme(h string) string {
	switch {
	case strings.HasPrefix(h, "$1$"):
		return "md5-crypt"
	case strings.HasPrefix(h, "$apr1$"):
		return "apr1"
	case strings.HasPrefix(h, "$5$"):
		return "sha256-crypt"
	case strings.HasPrefix(h, "$6$"):
		return "sha512-crypt"
	case strings.HasPrefix(h, "$2a$"), strings.HasPrefix(h, "$2b$"), strings.HasPrefix(h, "$2y$"):
		return "bcrypt"
	case strings.HasPrefix(h, "$y$"):
		return "yescrypt"
	case strings.HasPrefix(h, "$"):
		return "other"
	case len(h) == 13 && strings.Trim(h, cryptAlphabet) == "":
		return "des-crypt"
	}
	return ""
}

// locked reports a password field that cannot be logged in with.
func locked(h string) bool {
	return strings.HasPrefix(h, "!") || strings.HasPrefix(h, "*") || h == "x" || h == "NP" || h == "LK"
}

// verifier checks one candidate against a hash.
type verifier func(pw string) bool

// attemptsFor returns a verifier for h and how many dictionary words it
// may try: slow schemes and hostile round counts get fewer, so one image
// cannot make the analysis take minutes.
func attemptsFor(h string, dictLen int) (verifier, int) {
	switch hashScheme(h) {
	case "des-crypt":
		return func(pw string) bool { return desCrypt(pw, h[:2]) == h }, dictLen
	case "md5-crypt":
		c := md5_crypt.New()
		return func(pw string) bool { return c.Verify(h, []byte(pw)) == nil }, dictLen
	case "apr1":
		c := apr1_crypt.New()
		return func(pw string) bool { return c.Verify(h, []byte(pw)) == nil }, dictLen
	case "sha256-crypt", "sha512-crypt":
		var c gcrypt.Crypter = sha512_crypt.New()
		if strings.HasPrefix(h, "$5$") {
			c = sha256_crypt.New()
		}
		rounds := 5000
		if rest, ok := strings.CutPrefix(h[3:], "rounds="); ok {
			n, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, '$'), 0)])
			if err != nil || n > 200_000 {
				return nil, 0
			}
			rounds = max(n, 1000)
		}
		return func(pw string) bool { return c.Verify(h, []byte(pw)) == nil }, min(dictLen, max(20, dictLen*5000/rounds))
	case "bcrypt":
		cost, err := bcrypt.Cost([]byte(h))
		if err != nil || cost > 16 {
			return nil, 0
		}
		n := 48 >> max(cost-10, 0)
		if cost < 10 {
			n = 48 << min(10-cost, 4)
		}
		return func(pw string) bool { return bcrypt.CompareHashAndPassword([]byte(h), []byte(pw)) == nil }, max(n, 2)
	case "yescrypt":
		mem, ok := yescryptMemory(h)
		if !ok || mem > maxYescryptMemory {
			return nil, 0
		}
		// Debian's default ($y$j9T$: 16 MiB) costs about as much per try as
		// bcrypt cost 10; bigger settings get proportionally fewer tries.
		n := max(48*(16<<20)/mem, 4)
		return func(pw string) bool {
			got, err := yescrypt.Hash([]byte(pw), []byte(h))
			return err == nil && subtle.ConstantTimeCompare(got, []byte(h)) == 1
		}, n
	}
	return nil, 0
}

// maxYescryptMemory bounds the memory one yescrypt try may take: two
// accounts are cracked at once and the analysis stays within its budget.
const maxYescryptMemory = 64 << 20

// yescryptMemory returns the memory (128·r·N bytes) a "$y$j..." hash
// needs, or false for settings the yescrypt module does not support (it
// covers what libxcrypt generates: N from 2^10 to 2^18, r up to 32, p 1).
func yescryptMemory(h string) (int, bool) {
	const itoa64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	if len(h) < 7 || !strings.HasPrefix(h, "$y$j") || h[6] != '$' {
		return 0, false
	}
	nlog2, r := strings.IndexByte(itoa64, h[4])+1, strings.IndexByte(itoa64, h[5])+1
	if nlog2 < 10 || nlog2 > 18 || r < 1 || r > 32 {
		return 0, false
	}
	return 128 * r << nlog2, true
}

// errNoCrack says the scheme cannot be tried here.
var errNoCrack = errors.New("hash scheme not crackable here")

// crack tries the user name, the empty password and the dictionary.
func crack(ctx context.Context, user, h string, dict []Word) (Word, error) {
	v, n := attemptsFor(h, len(dict))
	if v == nil {
		return Word{}, errNoCrack
	}
	cands := append([]Word{{user, "user-name"}, {"", "empty"}}, dict[:min(n, len(dict))]...)
	for i, w := range cands {
		if i%16 == 0 && ctx.Err() != nil {
			return Word{}, ctx.Err()
		}
		if v(w.Password) {
			return w, nil
		}
	}
	return Word{}, nil
}
