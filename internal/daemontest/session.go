package daemontest

import (
	"github.com/iotcop/iotcop/proto"
)

// Identify runs p.Identify on a fresh connection to ep as the scanner
// does: for a server-first protocol the greeting is read first and handed
// over as the banner.
func Identify(t TB, p proto.Identifier, ep proto.Endpoint) (*proto.Identity, error) {
	t.Helper()
	ctx := Context(t)
	conn, err := ep.Connect(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer conn.Close()
	var banner []byte
	if p.ServerFirst() {
		if banner, err = proto.ReadSome(conn, proto.MaxBanner, ep.IOTimeout()); err != nil {
			t.Fatalf("read greeting of %s: %v", ep.Addr(), err)
		}
	}
	return p.Identify(ctx, conn, banner, ep)
}

// TryAll opens one login session and tries each credential in turn,
// failing the test on any error; it returns the results in order.
func TryAll(t TB, a proto.Authenticator, ep proto.Endpoint, id *proto.Identity, creds ...proto.Credential) []proto.LoginResult {
	t.Helper()
	ctx := Context(t)
	sess, err := a.Open(ctx, ep, id)
	if err != nil {
		t.Fatalf("open %s login session on %s: %v", a.Name(), ep.Addr(), err)
	}
	defer sess.Close()
	out := make([]proto.LoginResult, 0, len(creds))
	for _, c := range creds {
		res, err := sess.Try(ctx, c)
		if err != nil {
			t.Fatalf("Try(%s): %v", c, err)
		}
		t.Logf("Try(%s) = %v proof=%q detail=%q", c, res.Outcome, res.Proof, res.Detail)
		out = append(out, res)
	}
	return out
}
