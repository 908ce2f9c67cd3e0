package controller

import (
	"strings"
	"testing"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	keboolav1 "github.com/keboola/keboola-operator/api/v1alpha1"
)

func TestDerivedSecretName(t *testing.T) {
	long253 := strings.Repeat("a", 120) + "." + strings.Repeat("b", 132)
	tests := map[string]struct {
		name string
		want string
	}{
		"short name gets the suffix": {name: "orders", want: "orders-webhook-secret"},
		"100 characters fit":         {name: strings.Repeat("x", 100), want: strings.Repeat("x", 100) + "-webhook-secret"},
		"238 characters fit exactly": {name: strings.Repeat("y", 238), want: strings.Repeat("y", 238) + "-webhook-secret"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := derivedSecretName(tc.name); got != tc.want {
				t.Errorf("derivedSecretName(%q) = %q, want %q", tc.name, got, tc.want)
			}
		})
	}

	t.Run("253 characters are cut and hashed", func(t *testing.T) {
		got := derivedSecretName(long253)
		if len(got) > maxSecretNameLength {
			t.Errorf("length %d exceeds %d", len(got), maxSecretNameLength)
		}
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("%q is not a DNS subdomain: %v", got, errs)
		}
		if !strings.HasSuffix(got, secretNameSuffix) {
			t.Errorf("%q lacks the suffix %q", got, secretNameSuffix)
		}
	})

	t.Run("cut names differ by hash", func(t *testing.T) {
		a := derivedSecretName(strings.Repeat("a", 250) + "x")
		b := derivedSecretName(strings.Repeat("a", 250) + "y")
		if a == b {
			t.Errorf("two names with a long common prefix map to the same Secret name %q", a)
		}
	})

	t.Run("cut before a dot or dash stays valid", func(t *testing.T) {
		keep := maxSecretNameLength - len(secretNameSuffix) - 1 - nameHashLength
		name := strings.Repeat("c", keep-1) + ".-" + strings.Repeat("d", 40)
		got := derivedSecretName(name)
		if errs := validation.IsDNS1123Subdomain(got); len(errs) > 0 {
			t.Errorf("%q is not a DNS subdomain: %v", got, errs)
		}
	})
}

func TestLabelValue(t *testing.T) {
	for _, name := range []string{"a", strings.Repeat("a", 63), strings.Repeat("b", 64), strings.Repeat("c", 100),
		strings.Repeat("d", 54) + "." + strings.Repeat("e", 50), strings.Repeat("f", 253)} {
		got := labelValue(name)
		if errs := validation.IsValidLabelValue(got); len(errs) > 0 {
			t.Errorf("labelValue(%q) = %q is not a valid label value: %v", name, got, errs)
		}
		if len(name) <= maxLabelValueLength && got != name {
			t.Errorf("labelValue(%q) = %q, want the name unchanged", name, got)
		}
	}
}

func TestEffectiveWebhookName(t *testing.T) {
	nonASCII := "Příliš žluťoučký kůň – objednávky 🚀"
	tests := map[string]struct {
		namespace, name string
		specName        *string
		want            string
	}{
		"spec.name wins":          {namespace: "ns", name: "orders", specName: ptrTo("Orders"), want: "Orders"},
		"non-ASCII spec.name":     {namespace: "ns", name: "orders", specName: &nonASCII, want: nonASCII},
		"derived from namespace":  {namespace: "shop", name: "orders", want: "shop/orders"},
		"empty spec.name ignored": {namespace: "shop", name: "orders", specName: ptrTo(""), want: "shop/orders"},
		"cut to 255 bytes":        {namespace: strings.Repeat("n", 63), name: strings.Repeat("m", 253), want: (strings.Repeat("n", 63) + "/" + strings.Repeat("m", 253))[:255]},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			wh := &keboolav1.KeboolaWebhook{ObjectMeta: metav1.ObjectMeta{Namespace: tc.namespace, Name: tc.name}}
			wh.Spec.Name = tc.specName
			if got := effectiveWebhookName(wh); got != tc.want {
				t.Errorf("effectiveWebhookName() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTruncateUTF8(t *testing.T) {
	s := "ab" + "č" + "d" // "č" takes two bytes
	tests := []struct {
		n    int
		want string
	}{
		{n: 10, want: s},
		{n: 4, want: "abč"},
		{n: 3, want: "ab"},
		{n: 2, want: "ab"},
		{n: 0, want: ""},
	}
	for _, tc := range tests {
		got := truncateUTF8(s, tc.n)
		if got != tc.want {
			t.Errorf("truncateUTF8(%q, %d) = %q, want %q", s, tc.n, got, tc.want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("truncateUTF8(%q, %d) = %q is not valid UTF-8", s, tc.n, got)
		}
	}

	emoji := strings.Repeat("🚀", 100) // 400 bytes
	if got := truncateUTF8(emoji, 255); len(got) != 252 || !utf8.ValidString(got) {
		t.Errorf("truncateUTF8 of 100 emoji to 255 bytes = %d bytes, valid %v; want 252 valid bytes", len(got), utf8.ValidString(got))
	}
}

func TestMarkerName(t *testing.T) {
	uid := "3f1e2d4c-5b6a-4798-8a9b-0c1d2e3f4a5b"
	name := markerName("3f1e2d4c-5b6a-4798-8a9b-0c1d2e3f4a5b", "0123456789abcdef")
	if want := "keboola-operator:pending:" + uid + ":0123456789abcdef"; name != want {
		t.Errorf("markerName() = %q, want %q", name, want)
	}
	if len(name) > maxWebhookNameBytes {
		t.Errorf("marker name has %d bytes, more than %d", len(name), maxWebhookNameBytes)
	}
	if !isMarkerOf(name, "3f1e2d4c-5b6a-4798-8a9b-0c1d2e3f4a5b") {
		t.Errorf("isMarkerOf(%q) = false for its own UID", name)
	}
	if isMarkerOf(name, "3f1e2d4c-5b6a-4798-8a9b-0c1d2e3f4a5c") {
		t.Errorf("isMarkerOf(%q) = true for another UID", name)
	}
	if isMarkerOf("shop/orders", "3f1e2d4c-5b6a-4798-8a9b-0c1d2e3f4a5b") {
		t.Error("isMarkerOf() = true for a real name")
	}
}

func ptrTo[T any](v T) *T { return &v }
