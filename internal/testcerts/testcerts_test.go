package testcerts

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"testing"
)

func parse(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", certPEM)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServerCertVerifiesForLoopback(t *testing.T) {
	ca := NewCA(t)
	certPEM, keyPEM := ca.Server(t)
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("cert and key do not match: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.CertPEM()) {
		t.Fatal("CertPEM is not a usable root")
	}
	cert := parse(t, certPEM)
	for _, name := range []string{"127.0.0.1", "::1", "localhost"} {
		_, err := cert.Verify(x509.VerifyOptions{
			DNSName:   name,
			Roots:     roots,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: roots}); err == nil {
		t.Error("server cert verified for a name it does not carry")
	}
	// Another CA must not vouch for it.
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "127.0.0.1", Roots: NewCA(t).Pool()}); err == nil {
		t.Error("server cert verified against an unrelated CA")
	}
}

func TestClientCertCarriesIdentity(t *testing.T) {
	ca := NewCA(t)
	certPEM, keyPEM := ca.Client(t, "alice", "dev", "ops")
	cert := parse(t, certPEM)
	if cert.Subject.CommonName != "alice" {
		t.Errorf("CN = %q, want alice", cert.Subject.CommonName)
	}
	if !slices.Equal(cert.Subject.Organization, []string{"dev", "ops"}) {
		t.Errorf("O = %q, want [dev ops]", cert.Subject.Organization)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:     ca.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("client cert does not verify for client auth: %v", err)
	}

	certPath, keyPath := WriteFiles(t, t.TempDir(), "alice", certPEM, keyPEM)
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Fatalf("written files do not load: %v", err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", fi.Mode().Perm())
	}
}
