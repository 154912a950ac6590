package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestScoreClaims(t *testing.T) {
	telnet := claim{"127.0.0.2", 23, "admin", "s3cret"}
	ssh := claim{"127.0.0.3", 22, "admin", "s3cret"}
	truth := map[claim]bool{telnet: true, ssh: true}
	label := map[key]string{{"127.0.0.2", 23}: "telnet", {"127.0.0.3", 22}: "ssh", {"127.0.0.4", 23}: "fake-prompt"}
	labels := []string{"telnet", "ssh", "fake-prompt"}
	tests := []struct {
		name   string
		claims []claim
		want   map[string]string
	}{
		{
			name: "nothing claimed",
			want: map[string]string{"telnet": "0/1/0", "ssh": "0/1/0", "fake-prompt": "0/0/0", "all": "0/2/0"},
		},
		{
			name:   "found, twice reported, and prompts taken for logins",
			claims: []claim{telnet, telnet, {"127.0.0.4", 23, "root", "xc3511"}, {"127.0.0.4", 23, "admin", "admin"}},
			want:   map[string]string{"telnet": "1/0/0", "ssh": "0/1/0", "fake-prompt": "0/0/2", "all": "1/1/2"},
		},
		{
			name:   "wrong password on a real target, claim outside the bench",
			claims: []claim{ssh, {"127.0.0.2", 23, "admin", "admin"}, {"127.0.0.9", 80, "a", "b"}},
			want:   map[string]string{"telnet": "0/1/1", "ssh": "1/0/0", "fake-prompt": "0/0/0", "all": "1/1/2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, scoreClaims(tt.claims, truth, label, labels)); diff != "" {
				t.Errorf("scoreClaims (-want +got):\n%s", diff)
			}
		})
	}
}
