// Package speechtest runs the speech pipeline of the reference processor
// end to end with the offline stages (pocketsphinx, Apertium, espeak-ng):
// a real node, a speaker streaming an English clip in real time, the
// processor attached (publishing the transcript), a Spanish listener
// receiving captions and voice and an English one the transcript, and at
// the same time a second room whose only listener speaks English, who gets
// the transcript with nothing translated. It checks the path and logs the
// figures:
// the transcript's word error rate and, per sentence, the delay from the end
// of the spoken sentence to its translated caption and to the start of its
// translated voice (docs/processors.md, "Measured"). The tests skip when the
// Debian packages are missing (.ci/run installs them).
package speechtest
