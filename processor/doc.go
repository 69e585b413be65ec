// Package processor is Pentecost's reference translation processor: the
// engine that attaches to a server as a processor (docs/protocol.md, "Processors"),
// runs one Worker per (session, target language) the server assigns it,
// feeds each the session's source audio and publishes what it produces as
// translated audio and captions.
//
// The engine handles the protocol: sessionStarted, languagesChanged (start
// and stop workers as listeners come and go), sessionEnded, the stream ids
// of source frames, the binary translated-frame format, heartbeats,
// connectionRefreshRequired (a new connection first, then the old one is
// closed, so the server hands the languages over without a gap), and
// reconnection with backoff after a drop. Each worker has a bounded queue
// that drops its oldest chunk when the worker falls behind.
//
// What a worker does is a Translator's business. This package has three:
// Tone (a sine tone per language, to hear which stream you are on), Exec (an
// external command per stream: audio on stdin, translation on stdout) and
// Passthrough (the source, unchanged). A real engine implements Translator.
// `pentecost processor` runs the engine from the command line; see
// docs/processors.md.
package processor
