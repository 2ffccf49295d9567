package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// secretPrefix starts every signing secret, as the Standard Webhooks
// specification spells them.
const secretPrefix = "whsec_"

// NewSecret returns a fresh signing secret: whsec_ and 32 random bytes in
// base64.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return secretPrefix + base64.StdEncoding.EncodeToString(b)
}

// CheckSecret returns an error unless s is a signing secret: whsec_ and
// base64 of 24 to 64 bytes.
func CheckSecret(s string) error {
	_, err := secretKey(s)
	return err
}

func secretKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, secretPrefix))
	if err != nil || !strings.HasPrefix(s, secretPrefix) || len(b) < 24 || len(b) > 64 {
		return nil, fmt.Errorf("a webhook secret is whsec_ followed by 24 to 64 bytes in base64")
	}
	return b, nil
}

// Signature returns the value of the webhook-signature header of a message:
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>" for each secret, separated
// by spaces (two while a rotated secret still signs).
func Signature(secrets []string, id string, at time.Time, body []byte) (string, error) {
	sigs := make([]string, 0, len(secrets))
	ts := strconv.FormatInt(at.Unix(), 10)
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", err
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "."))
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}
