package httpproto

import (
	"context"
	"fmt"

	"github.com/iotcop/iotcop/proto"
)

// ProbeOpenAccess requests / and the probe paths without credentials and
// reports the first page that clearly is an admin or configuration page:
// served 2xx, not a login page, talking of administration in its title or
// headings, and either carrying form controls a person would change or
// offering to log out (see page.isAdminPage). Static pages ("It works")
// and login pages never qualify. Details: "path" (the page), "requested" (the path asked for
// before redirects), "title", "signs" (admin words found), "controls".
func (p *Protocol) ProbeOpenAccess(ctx context.Context, ep proto.Endpoint, id *proto.Identity) (*proto.OpenAccess, error) {
	f := newFetcher(ep)
	paths := append([]string{"/"}, p.probePaths()...)
	failures := 0
	for _, path := range paths {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("http open-access probe of %s: %w", ep.Addr(), err)
		}
		r, err := f.get(ctx, path, nil)
		if err != nil {
			if failures++; failures >= 3 {
				return nil, fmt.Errorf("http open-access probe of %s: %w", ep.Addr(), err)
			}
			continue
		}
		failures = 0
		if r.status < 200 || r.status > 299 || !r.isHTML() {
			continue
		}
		pg := parsePage(r.body)
		ok, signs := pg.isAdminPage()
		if !ok {
			continue
		}
		return &proto.OpenAccess{
			What: "HTTP admin page without authentication",
			Proof: fmt.Sprintf("%d on %s without credentials: an admin page (%d form controls, logout offered: %v) and no login form",
				r.status, r.path, pg.controls, pg.hasLogout),
			Details: map[string]any{
				"path":      r.path,
				"requested": path,
				"title":     proto.Printable([]byte(pg.title)),
				"signs":     signs,
				"controls":  pg.controls,
				"logout":    pg.hasLogout,
			},
		}, nil
	}
	return nil, nil
}
