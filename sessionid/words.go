package sessionid

// The word lists are curated by hand so that every adjective reads well in
// front of every noun: no bodies, no violence, no skin colours, no people
// groups, no words with a second, crude meaning, and no sacred names that an
// adjective could make irreverent. words_test.go checks every combination
// against the blacklist and the rules below; when adding a word, read it
// after every adjective (or before every noun) aloud.
//
// Both lists are append-only in spirit: removing a word never breaks an
// existing ID (Valid does not consult the lists), but keep them sorted so a
// duplicate is easy to spot in review.

var adjectives = []string{
	"abiding", "abundant", "amber", "ancient", "angelic", "anointed", "ardent", "azure",
	"beloved", "blameless", "blessed", "bold", "bountiful", "brave", "bright", "brilliant",
	"calm", "caring", "celestial", "charitable", "cheerful", "cherished", "clear", "crystal",
	"devoted", "devout", "dewy", "diligent", "earnest", "emerald", "eternal", "evening",
	"exalted", "fair", "faithful", "favored", "fearless", "fervent", "flowing", "forgiving",
	"fragrant", "friendly", "fruitful", "gallant", "generous", "gentle", "glad", "gleaming",
	"glorious", "glowing", "golden", "graceful", "gracious", "grateful", "green", "hallowed",
	"happy", "harmonious", "healing", "heavenly", "heavenward", "holy", "honest", "honored",
	"hopeful", "humble", "joyful", "joyous", "jubilant", "kind", "kindred", "lasting",
	"lively", "living", "lofty", "lovely", "loving", "loyal", "luminous", "majestic",
	"meek", "merciful", "merry", "mighty", "mindful", "misty", "morning", "noble",
	"patient", "peaceable", "peaceful", "pearly", "pious", "plentiful", "praising", "prayerful",
	"precious", "princely", "quiet", "radiant", "redeemed", "regal", "rejoicing", "renewed",
	"restored", "reverent", "righteous", "risen", "royal", "sacred", "saintly", "sapphire",
	"serene", "shining", "silver", "sincere", "singing", "snowy", "sparkling", "starry",
	"stately", "steadfast", "steady", "still", "strong", "sturdy", "sunlit", "sunny",
	"thankful", "thoughtful", "tireless", "tranquil", "treasured", "triumphant", "true", "trusty",
	"upright", "valiant", "verdant", "vibrant", "victorious", "vigilant", "violet", "watchful",
	"welcoming", "wise", "worthy", "zealous",
}

var nouns = []string{
	"acacia", "almond", "anchor", "angel", "anthem", "antioch", "ark", "banner",
	"barley", "basket", "beacon", "bell", "bethany", "bethel", "blessing", "bread",
	"breeze", "brook", "camel", "canaan", "candle", "carmel", "cedar", "chalice",
	"chapel", "charity", "cherub", "choir", "chorus", "cloud", "corinth", "covenant",
	"crane", "crown", "cypress", "dawn", "deer", "dew", "dove", "eagle",
	"eden", "emmaus", "ephesus", "faith", "falcon", "fawn", "field", "fig",
	"flame", "fountain", "galilee", "garden", "gate", "gazelle", "glory", "goshen",
	"gospel", "grace", "harmony", "harp", "harvest", "haven", "hawk", "herald",
	"heron", "hill", "honey", "hope", "horeb", "hymn", "hyssop", "jasper",
	"jericho", "jordan", "joy", "lamb", "lamp", "lantern", "light", "lily",
	"lion", "loaf", "lyre", "manna", "meadow", "mercy", "mustard", "myrtle",
	"nazareth", "oak", "oasis", "olive", "onyx", "orchard", "owl", "palm",
	"parable", "pasture", "patmos", "peace", "pearl", "pelican", "pilgrim", "praise",
	"prayer", "promise", "psalm", "quail", "rain", "rainbow", "refuge", "river",
	"rock", "rose", "ruby", "sabbath", "sail", "scribe", "scroll", "seed",
	"shelter", "shepherd", "shield", "shiloh", "siloam", "sinai", "song", "sower",
	"sparrow", "star", "stone", "stork", "stream", "sunrise", "tabor", "temple",
	"topaz", "trumpet", "valley", "verse", "vine", "vineyard", "wheat", "willow",
	"wisdom",
}
