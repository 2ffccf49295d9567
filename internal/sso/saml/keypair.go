package saml

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"
)

// keyValidity is how long a generated certificate is valid. Identity
// providers use the SP certificate as a container for the public key
// (SAML metadata interoperability profile); a long validity spares
// administrators a rotation nobody asked for.
const keyValidity = 10 * 365 * 24 * time.Hour

// GenerateKeyPair makes a new RSA 2048 key and a self-signed certificate for
// it, named after the service provider's entity id, valid from now.
func GenerateKeyPair(entityID string, now time.Time) (KeyPair, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return KeyPair{}, fmt.Errorf("saml: generating the key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return KeyPair{}, fmt.Errorf("saml: generating the serial number: %w", err)
	}
	// A common name is at most 64 characters (RFC 5280); the entity id is
	// only a label here.
	cn := entityID
	if len(cn) > 64 {
		cn = cn[:64]
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Steward"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(keyValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("saml: making the certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return KeyPair{}, fmt.Errorf("saml: encoding the key: %w", err)
	}
	return KeyPair{
		CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		PrivateKeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})),
	}, nil
}
