// Package tlsaudit judges a TLS service the way testssl.sh and sslscan do,
// in Go and within a small connection budget: which protocol versions from
// SSLv3 to TLS 1.3 it accepts, which weak cipher suites (NULL, export,
// anonymous, RC4, DES, 3DES, IDEA) it accepts at each, and the facts and
// problems of its certificate.
//
// Versions and suites are probed with hand-built ClientHellos
// (golang.org/x/crypto/cryptobyte): the server's ServerHello, or its
// alert, says what it chose, and the handshake is never completed. That
// reaches what crypto/tls refuses to speak (SSLv3, RC4, NULL, export,
// anonymous DH). A suite or version is reported only on positive proof: a
// ServerHello selecting it. Refusals, resets and timeouts never count.
package tlsaudit
