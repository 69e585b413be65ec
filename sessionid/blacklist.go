package sessionid

import "strings"

// The blacklist is the second guard behind the curated word lists: if a word
// added later, or two words run together, spell something a congregation
// should not see on a projector, Generate draws again.
//
// blockedSubstrings are terms that are practically never innocent, so they are
// matched anywhere in the ID with its hyphens removed, which also catches a
// term spelled across the boundary of two words.
var blockedSubstrings = []string{
	"asshole", "bastard", "bitch", "blood", "boob", "crucif", "cunt", "damn",
	"death", "dildo", "fagg", "fuck", "hitler", "jizz", "murder", "naked",
	"nazi", "negro", "nigg", "nude", "pedo", "penis", "piss", "porn",
	"rapist", "retard", "satan", "shit", "slave", "slain", "slut", "suicide",
	"torture", "twat", "vagina", "wank", "whore",
}

// blockedWords are short terms that hide inside innocent words ("ass" in
// "grass", "sin" in "sinai", "cum" in "cucumber"), so they only count as a
// whole hyphen-separated part of the ID. Sacred names are here too: an
// adjective in front of them could read as mockery.
var blockedWords = map[string]bool{
	"allah": true, "anal": true, "ass": true, "beast": true, "black": true,
	"chink": true, "christ": true, "coon": true, "cross": true, "cum": true,
	"dead": true, "demon": true, "devil": true, "dick": true, "fag": true,
	"fat": true, "gay": true, "god": true, "gook": true, "hell": true,
	"homo": true, "jesus": true, "kike": true, "kill": true, "lucifer": true,
	"nail": true, "queer": true, "rape": true, "sex": true, "sexy": true,
	"sin": true, "sinful": true, "spic": true, "tit": true, "tits": true,
	"ugly": true, "virgin": true, "whip": true,
}

// blocked reports whether id contains a blacklisted term. No blocked
// substring has a hyphen, so searching the hyphen-free form covers the ID
// itself too.
func blocked(id string) bool {
	joined := strings.ReplaceAll(id, "-", "")
	for _, bad := range blockedSubstrings {
		if strings.Contains(joined, bad) {
			return true
		}
	}
	for part := range strings.SplitSeq(id, "-") {
		if blockedWords[part] {
			return true
		}
	}
	return false
}
