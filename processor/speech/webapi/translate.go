package webapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pentecost/pentecost/processor/speech"
)

// LibreTranslateConfig configures NewLibreTranslate.
type LibreTranslateConfig struct {
	// URL is the server's base URL (http://127.0.0.1:5000 for a local
	// `libretranslate`, https://libretranslate.com for the hosted one).
	URL string
	// Key is sent as "api_key" in the request body, as LibreTranslate
	// expects; empty sends none (a server run without --api-keys).
	Key string
	// Client defaults to http.DefaultClient.
	Client *http.Client
}

// LibreTranslate is a speech.TextTranslator for a LibreTranslate server:
//
//	POST {URL}/translate
//	Content-Type: application/json
//	{"q": "...", "source": "en", "target": "es", "format": "text", "api_key": "..."}
//	→ 200 {"translatedText": "..."}
//	→ 4xx/5xx {"error": "..."} (400 unsupported language, 403 bad key,
//	  429 over the server's --req-limit)
//
// Prepare asks GET {URL}/languages (→ [{"code": "en", "targets": [...]}])
// whether the pair exists, so a missing language is reported once rather
// than failing every sentence. The list is fetched once per LibreTranslate.
type LibreTranslate struct {
	ep, langs *endpoint

	// list is the server's /languages, fetched by the first Prepare that
	// gets it: every (session, language) worker start and restart calls
	// Prepare, and the list does not change under a running server. A
	// failed fetch is not kept, so the next Prepare tries again. The
	// channel is the lock, so that a Prepare whose context ends stops
	// waiting for another's fetch.
	lock    chan struct{}
	list    []libreLanguage
	fetched bool
}

type libreLanguage struct {
	Code    string   `json:"code"`
	Targets []string `json:"targets"`
}

// NewLibreTranslate checks c.
func NewLibreTranslate(c LibreTranslateConfig) (*LibreTranslate, error) {
	if c.URL == "" {
		return nil, errors.New("LibreTranslate: no server URL (--mt-url)")
	}
	ep, err := newEndpoint("LibreTranslate", c.URL, "/translate", c.Key, c.Client)
	if err != nil {
		return nil, err
	}
	langs, err := newEndpoint("LibreTranslate", c.URL, "/languages", c.Key, c.Client)
	if err != nil {
		return nil, err
	}
	return &LibreTranslate{ep: ep, langs: langs, lock: make(chan struct{}, 1)}, nil
}

// Prepare implements speech.TextTranslator. When the language list cannot
// be had, the pair is assumed to exist: translation errors will tell.
func (l *LibreTranslate) Prepare(ctx context.Context, from, to string) error {
	list, ok := l.languages(ctx)
	if !ok {
		return nil
	}
	for _, lang := range list {
		if lang.Code == from {
			if lang.Targets == nil || slices.Contains(lang.Targets, to) {
				return nil
			}
			return fmt.Errorf("the LibreTranslate server has no %s → %s model: %w", from, to, speech.ErrUnsupported)
		}
	}
	return fmt.Errorf("the LibreTranslate server has no %s model: %w", from, speech.ErrUnsupported)
}

// languages returns the server's language list, fetching it unless an
// earlier call did; ok is false when it cannot be had.
func (l *LibreTranslate) languages(ctx context.Context) (list []libreLanguage, ok bool) {
	select {
	case l.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, false
	}
	defer func() { <-l.lock }()
	if l.fetched {
		return l.list, true
	}
	resp, err := l.langs.get(ctx, nil)
	if err != nil {
		return nil, false
	}
	b, err := l.langs.readJSON(resp)
	if err != nil {
		return nil, false
	}
	if json.Unmarshal(b, &list) != nil {
		return nil, false
	}
	l.list, l.fetched = list, true
	return list, true
}

// Translate implements speech.TextTranslator.
func (l *LibreTranslate) Translate(ctx context.Context, text, from, to string) (string, error) {
	req := map[string]string{"q": text, "source": from, "target": to, "format": "text"}
	if l.ep.key != "" {
		req["api_key"] = l.ep.key
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	return l.ep.postJSON(ctx, "application/json", body, nil, parseLibreTranslate)
}

func parseLibreTranslate(b []byte) (string, error) {
	var m struct {
		TranslatedText *string `json:"translatedText"`
		Error          string  `json:"error"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("malformed answer: %w", err)
	}
	if m.Error != "" {
		return "", fmt.Errorf("the server answered an error: %s", clean(m.Error))
	}
	if m.TranslatedText == nil {
		return "", errors.New(`malformed answer: no "translatedText"`)
	}
	return *m.TranslatedText, nil
}

// DeepLConfig configures NewDeepL.
type DeepLConfig struct {
	// URL is the API's base URL; empty picks by the key, as DeepL's own
	// libraries do: https://api-free.deepl.com for a free key (ending in
	// ":fx"), https://api.deepl.com otherwise.
	URL string
	// Key is sent as "Authorization: DeepL-Auth-Key KEY"; required.
	Key string
	// Client defaults to http.DefaultClient.
	Client *http.Client
}

// DeepL is a speech.TextTranslator for DeepL's API:
//
//	POST {URL}/v2/translate
//	Authorization: DeepL-Auth-Key KEY
//	Content-Type: application/json
//	{"text": ["..."], "source_lang": "EN", "target_lang": "ES"}
//	→ 200 {"translations": [{"detected_source_language": "EN", "text": "..."}]}
//	→ 4xx/5xx {"message": "..."} (403 bad key, 429 too many requests,
//	  456 quota exceeded)
//
// English and Portuguese targets need a variant at DeepL: en is sent as
// EN-US, pt as PT-BR.
type DeepL struct {
	ep *endpoint
}

// NewDeepL checks c.
func NewDeepL(c DeepLConfig) (*DeepL, error) {
	if c.Key == "" {
		return nil, errors.New("DeepL: no API key (set PENTECOST_MT_KEY)")
	}
	if c.URL == "" {
		c.URL = "https://api.deepl.com"
		if strings.HasSuffix(c.Key, ":fx") {
			c.URL = "https://api-free.deepl.com"
		}
	}
	ep, err := newEndpoint("DeepL", c.URL, "/v2/translate", c.Key, c.Client)
	if err != nil {
		return nil, err
	}
	return &DeepL{ep: ep}, nil
}

// Prepare implements speech.TextTranslator; DeepL's language list is not
// checked (a wrong pair fails its first sentence, logged).
func (d *DeepL) Prepare(ctx context.Context, from, to string) error { return nil }

func deeplTarget(lang string) string {
	switch lang {
	case "en":
		return "EN-US"
	case "pt":
		return "PT-BR"
	}
	return strings.ToUpper(lang)
}

// Translate implements speech.TextTranslator.
func (d *DeepL) Translate(ctx context.Context, text, from, to string) (string, error) {
	body, err := json.Marshal(map[string]any{
		"text":        []string{text},
		"source_lang": strings.ToUpper(from),
		"target_lang": deeplTarget(to),
	})
	if err != nil {
		return "", err
	}
	return d.ep.postJSON(ctx, "application/json", body, http.Header{"Authorization": {"DeepL-Auth-Key " + d.ep.key}}, parseDeepL)
}

func parseDeepL(b []byte) (string, error) {
	var m struct {
		Translations []struct {
			Text *string `json:"text"`
		} `json:"translations"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("malformed answer: %w", err)
	}
	if len(m.Translations) == 0 || m.Translations[0].Text == nil {
		return "", errors.New(`malformed answer: no "translations[0].text"`)
	}
	var parts []string
	for _, t := range m.Translations {
		if t.Text != nil {
			parts = append(parts, *t.Text)
		}
	}
	return strings.Join(parts, " "), nil
}
