package analyze

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/iotcop/iotcop/finding"
	"github.com/iotcop/iotcop/firmware/internal/imagetest"
	"github.com/iotcop/iotcop/internal/daemontest"
)

func TestSecrets(t *testing.T) {
	t.Parallel()
	tree := treeOf(t, map[string]string{
		"etc/cloud.conf":    "aws_access_key_id = AKIAIOSFODNN7QWERTY1\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQWERTYKEY\n",
		"usr/bin/agent":     "\x7fELF\x00\x00AIzaSyD4x9Qm2LkP0vB7nR3tW8yZ1aC5eF6gH7j\x00",
		"etc/app.json":      `{"client_secret": "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c", "api_key": "changeme-placeholder-value"}`,
		"etc/mqtt.conf":     "url=mqtts://device:S3cr3tPw@broker.vendor.example.net:8883\n",
		"usr/lib/libfoo.so": "\x7fELF\x00client_secret\x00api_key=\x00",
		"etc/readme.txt":    "set secret = \"aaaaaaaaaaaaaaaaaaaa\" in the config\n",
	})
	fs, err := Run(context.Background(), tree, []Analyzer{NewSecrets()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fs {
		ev := finding.Reveal(f.Evidence)
		got[f.Path+" "+fmt.Sprint(ev["rule"])] = fmt.Sprint(ev["secret"])
		if _, ok := f.Evidence["secret"].(finding.Secret); !ok {
			t.Errorf("%s: secret not wrapped as finding.Secret", f.Title)
		}
	}
	want := map[string]string{
		"/etc/cloud.conf aws-access-key-id":           "AKIAIOSFODNN7QWERTY1",
		"/etc/cloud.conf aws-secret-access-key":       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQWERTYKEY",
		"/usr/bin/agent google-api-key":               "AIzaSyD4x9Qm2LkP0vB7nR3tW8yZ1aC5eF6gH7j",
		"/etc/app.json generic-credential-assignment": "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c",
		"/etc/mqtt.conf private-url-credentials":      "S3cr3tPw",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d findings, want %d: %v", len(got), len(want), got)
	}
}

func TestCredentialFiles(t *testing.T) {
	t.Parallel()
	daemontest.Require(t, "mosquitto_passwd=mosquitto", "openssl")
	dir := t.TempDir()
	imagetest.Run(t, dir, nil, "touch", "pw")
	imagetest.Run(t, dir, nil, "mosquitto_passwd", "-b", "pw", "sensor", "admin")
	imagetest.Run(t, dir, nil, "mosquitto_passwd", "-b", "pw", "strong", "Zq9!vR2#kP7@long-unguessable")
	mq := string(imagetest.Run(t, dir, nil, "cat", "pw"))
	apr1 := strings.TrimSpace(string(imagetest.Run(t, "", nil, "openssl", "passwd", "-apr1", "1234")))
	tree := treeOf(t, map[string]string{
		"etc/mosquitto/passwd":    mq,
		"www/.htpasswd":           "admin:" + apr1 + "\nviewer:{SHA}0DPiKuNIrrVmD8IUCuw1hQxNqZc=\n",
		"etc/ppp/chap-secrets":    "# client server secret IP\n\"isp\" * \"ppp-pass-123\" *\n",
		"etc/wpa_supplicant.conf": "network={\n ssid=\"Factory\"\n psk=\"factory-wifi-key\"\n}\n",
		"etc/hostapd.conf":        "ssid=Cam\nwpa_passphrase=12345678\n",
		"etc/config/wireless":     "config wifi-iface 'default_radio0'\n\toption ssid 'OpenWrt'\n\toption key 'DefaultKey2024'\n",
		"etc/config/rpcd":         "config login\n\toption username 'root'\n\toption password '$p$root'\n",
		"etc/snmp/snmpd.conf":     "# comment\nrocommunity public default\nrwcommunity s3cretRW 10.0.0.0/8\n",
	})
	fs, err := Run(context.Background(), tree, []Analyzer{NewAccounts()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range fs {
		ev := finding.Reveal(f.Evidence)
		got[f.Path+" "+fmt.Sprint(ev["user"])] = fmt.Sprintf("%v/%v", ev["password"], f.Severity)
	}
	want := map[string]string{
		"/etc/mosquitto/passwd sensor":     "admin/critical",
		"/etc/mosquitto/passwd strong":     "<nil>/high",
		"/www/.htpasswd admin":             "1234/critical",
		"/www/.htpasswd viewer":            "admin/critical",
		"/etc/ppp/chap-secrets isp":        "ppp-pass-123/critical",
		"/etc/wpa_supplicant.conf Factory": "factory-wifi-key/critical",
		"/etc/hostapd.conf <nil>":          "12345678/critical",
		"/etc/config/wireless <nil>":       "DefaultKey2024/critical",
		"/etc/snmp/snmpd.conf rocommunity": "public/critical",
		"/etc/snmp/snmpd.conf rwcommunity": "s3cretRW/critical",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v", got)
	}
}

// secretRuleCases put each rule's token at the edges: glued to words,
// overlapping, at the start and end of the content, across lines.
var secretRuleCases = []string{
	"AKIAIOSFODNN7EXAMPLE",
	"xAKIAIOSFODNN7EXAMPLE AKIAIOSFODNN7EXAMPLEX _AKIAIOSFODNN7EXAMPLE\x00AKIAIOSFODNN7EXAMPLF",
	"AKIAAKIAIOSFODNN7EXAMPLE AKIAIOSFODNN7EXAMPAKIAIOSFODNN7EXAMPLE",
	"key=AIzaSyA1234567890abcdefghijklmnopqrstuv end ghp_0123456789abcdefghijABCDEFGHIJ012345",
	"gho_0123456789abcdefghijABCDEFGHIJ012345ghs_0123456789abcdefghijABCDEFGHIJ012345 ghr_ ghu_",
	"xoxb-1234567890-abcdefghij xoxp-12345 -xoxa-1234567890123456789012345678901234567890123456789012345678901234567890123456789",
	"sk_live_0123456789abcdefghijklmn sk_live_short SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
	"AccountKey=" + strings.Repeat("A", 86) + "== AccountKey=" + strings.Repeat("b", 85) + "==",
	"mqtt://user:pass1234@broker.example.com\nhttps://admin:s3cret!!@10.0.0.1/x\nrtsp://a:b@c ftp://u:pw\n@h",
	"xhttp://user:pass1234@host http://u:pppp@h\r\nmqtts://u:pppp@h",
}

func TestSecretRuleRunnersMatchRegexp(t *testing.T) {
	t.Parallel()
	found := map[string]int{}
	for _, c := range secretRuleCases {
		checkSecretRules(t, []byte(c))
		for _, r := range secretRules {
			found[r.id] += len(r.re.FindAllIndex([]byte(c), -1))
		}
	}
	for _, r := range secretRules {
		if (r.anchored || r.lineLocal) && found[r.id] == 0 {
			t.Errorf("no case matches rule %s", r.id)
		}
	}
}
