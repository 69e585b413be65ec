package pentecost

import "strings"

// Language is one entry of the supported-language table served at
// GET /languages.
type Language struct {
	Code       string `json:"code"`
	Name       string `json:"name"`
	NativeName string `json:"nativeName"`
}

// Languages is the one table of supported languages (ISO 639-1), for both
// source and target languages. Order is the order GET /languages shows.
var Languages = []Language{
	{"en", "English", "English"},
	{"es", "Spanish", "Español"},
	{"fr", "French", "Français"},
	{"de", "German", "Deutsch"},
	{"it", "Italian", "Italiano"},
	{"pt", "Portuguese", "Português"},
	{"ru", "Russian", "Русский"},
	{"ja", "Japanese", "日本語"},
	{"ko", "Korean", "한국어"},
	{"zh", "Chinese", "中文"},
	{"ar", "Arabic", "العربية"},
	{"hi", "Hindi", "हिन्दी"},
	{"nl", "Dutch", "Nederlands"},
	{"pl", "Polish", "Polski"},
	{"tr", "Turkish", "Türkçe"},
	{"sv", "Swedish", "Svenska"},
	{"da", "Danish", "Dansk"},
	{"no", "Norwegian", "Norsk"},
	{"fi", "Finnish", "Suomi"},
	{"uk", "Ukrainian", "Українська"},
	{"ro", "Romanian", "Română"},
	{"el", "Greek", "Ελληνικά"},
	{"cs", "Czech", "Čeština"},
	{"hu", "Hungarian", "Magyar"},
	{"he", "Hebrew", "עברית"},
	{"id", "Indonesian", "Bahasa Indonesia"},
	{"ms", "Malay", "Bahasa Melayu"},
	{"tl", "Tagalog", "Tagalog"},
	{"vi", "Vietnamese", "Tiếng Việt"},
	{"th", "Thai", "ไทย"},
	{"sw", "Swahili", "Kiswahili"},
	{"am", "Amharic", "አማርኛ"},
	{"fa", "Persian", "فارسی"},
	{"ur", "Urdu", "اردو"},
	{"bn", "Bengali", "বাংলা"},
	{"ta", "Tamil", "தமிழ்"},
}

var languageByCode = func() map[string]Language {
	m := make(map[string]Language, len(Languages))
	for _, l := range Languages {
		m[l.Code] = l
	}
	return m
}()

// LookupLanguage reports whether code (after lower-casing) is supported, and
// returns its normalized form.
func LookupLanguage(code string) (string, bool) {
	c := strings.ToLower(strings.TrimSpace(code))
	_, ok := languageByCode[c]
	return c, ok
}

// WellFormedLanguage reports whether code looks like an ISO 639-1 code: two
// ASCII letters.
func WellFormedLanguage(code string) bool {
	c := strings.ToLower(strings.TrimSpace(code))
	return len(c) == 2 && c[0] >= 'a' && c[0] <= 'z' && c[1] >= 'a' && c[1] <= 'z'
}

// CheckTargetLanguage validates a listener's language for field, with the
// precise codes of docs/protocol.md.
func CheckTargetLanguage(field, code string) (string, error) {
	if strings.TrimSpace(code) == "" {
		return "", Missing(field)
	}
	if !WellFormedLanguage(code) {
		return "", Invalid(field, "not a two-letter ISO 639-1 code")
	}
	c, ok := LookupLanguage(code)
	if !ok {
		return "", Errorf(ErrUnsupportedLang, "language %q is not supported", c).
			With("field", field).With("languageCode", c)
	}
	return c, nil
}

// CheckSourceLanguage validates a session's source language.
func CheckSourceLanguage(field, code string) (string, error) {
	if strings.TrimSpace(code) == "" {
		return "", Missing(field)
	}
	c, ok := LookupLanguage(code)
	if !ok {
		return "", Errorf(ErrInvalidLanguage, "source language %q is not supported", c).
			With("field", field).With("languageCode", c)
	}
	return c, nil
}
