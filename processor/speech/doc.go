// Package speech is the speech pipeline of the reference processor
// (`pentecost processor --mode speech`): it recognizes a session's speech
// once, publishes the transcript (interim and final), translates each
// sentence into every language the server assigns, publishes the
// translations as captions and, optionally, speaks them as that language's
// translated audio.
//
// A session's audio goes through four stages, each behind a small
// interface declared here: a VAD cuts it into sentences at pauses
// (EnergyVAD), a Recognizer turns each sentence into text while it is
// being spoken, a TextTranslator translates it, a Synthesizer speaks the
// translation. Package offline implements them with programs Debian ships
// (pocketsphinx, Apertium, espeak-ng); package webapi with the HTTP APIs of
// speech and translation servers (OpenAI-compatible transcription and
// speech, LibreTranslate, DeepL).
//
// Audio in and out is pcm16, 16 kHz, mono.
package speech
