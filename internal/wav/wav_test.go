package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// pcm makes n little-endian samples from f.
func pcm(n int, f func(i int) int16) []byte {
	b := make([]byte, 0, 2*n)
	for i := range n {
		b = binary.LittleEndian.AppendUint16(b, uint16(f(i)))
	}
	return b
}

// chunk builds one RIFF chunk with its pad byte.
func chunk(id string, body []byte) []byte {
	b := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...)
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

func fmtBody(tag uint16, channels, rate, bits int) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, tag)
	b = le.AppendUint16(b, uint16(channels))
	b = le.AppendUint32(b, uint32(rate))
	b = le.AppendUint32(b, uint32(rate*channels*bits/8))
	b = le.AppendUint16(b, uint16(channels*bits/8))
	b = le.AppendUint16(b, uint16(bits))
	return b
}

func riff(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

func TestRoundTripFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	data := pcm(1001, func(i int) int16 { return int16(i*37 - 9000) })
	w, err := NewWriter(f, 22050, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Write in uneven pieces to make sure nothing assumes whole frames.
	for _, part := range [][]byte{data[:3], data[3:1000], data[1000:]} {
		if _, err := w.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := binary.LittleEndian.Uint32(raw[4:8]), uint32(len(raw)-8); got != want {
		t.Errorf("RIFF size %d, want %d", got, want)
	}
	r, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Format{SampleRate: 22050, Channels: 1, BitsPerSample: 16}); r.Format != want {
		t.Errorf("format %+v, want %+v", r.Format, want)
	}
	if r.DataSize != int64(len(data)) {
		t.Errorf("DataSize %d, want %d", r.DataSize, len(data))
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("PCM differs after round trip")
	}
}

func TestWriterOddLengthPadded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd.wav")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, 16000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if len(raw) != headerSize+4 {
		t.Fatalf("file is %d bytes, want %d (3 data + pad)", len(raw), headerSize+4)
	}
	if got := binary.LittleEndian.Uint32(raw[40:44]); got != 3 {
		t.Errorf("data size %d, want 3 (pad not counted)", got)
	}
	if got := binary.LittleEndian.Uint32(raw[4:8]); got != uint32(len(raw)-8) {
		t.Errorf("RIFF size %d, want %d", got, len(raw)-8)
	}
}

// onlyWriter hides every method but Write, like a pipe wrapped by a library.
type onlyWriter struct{ io.Writer }

func TestStreamingWriter(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(onlyWriter{&buf}, 16000, 2)
	if err != nil {
		t.Fatal(err)
	}
	data := pcm(64, func(i int) int16 { return int16(i) })
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	raw := buf.Bytes()
	if binary.LittleEndian.Uint32(raw[4:8]) != 0xFFFFFFFF || binary.LittleEndian.Uint32(raw[40:44]) != 0xFFFFFFFF {
		t.Errorf("streaming header sizes not 0xFFFFFFFF: % x", raw[:44])
	}
	r, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if r.DataSize != -1 {
		t.Errorf("DataSize %d, want -1 for a streaming header", r.DataSize)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, data) {
		t.Error("streamed PCM differs")
	}
}

func TestStreamingWriterOnPipe(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(pr)
		done <- b
	}()
	w, err := NewWriter(pw, 16000, 1) // *os.File, but Seek fails on a pipe
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte{1, 0})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	raw := <-done
	if binary.LittleEndian.Uint32(raw[40:44]) != 0xFFFFFFFF {
		t.Errorf("pipe got a seekable header: % x", raw[:44])
	}
}

func TestReaderSkipsUnknownChunks(t *testing.T) {
	data := pcm(10, func(i int) int16 { return int16(i - 5) })
	// An odd-sized LIST chunk (pad byte follows), a junk chunk before fmt,
	// a fmt chunk with the 2-byte extension, and a trailing chunk after data.
	fmtExt := append(fmtBody(formatPCM, 1, 8000, 16), 0, 0)
	raw := riff(
		chunk("JUNK", make([]byte, 28)),
		chunk("fmt ", fmtExt),
		chunk("LIST", []byte("INFOISFT\x05\x00\x00\x00abcde")),
		chunk("fact", []byte{10, 0, 0, 0}),
		chunk("data", data),
		chunk("id3 ", []byte("trailing")),
	)
	r, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if r.Format.SampleRate != 8000 || r.Format.Channels != 1 {
		t.Errorf("format %+v", r.Format)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, data) {
		t.Errorf("data %v, want %v (trailing chunk must not leak in)", got, data)
	}
}

func TestReaderExtensiblePCM(t *testing.T) {
	le := binary.LittleEndian
	b := fmtBody(formatExtensible, 2, 48000, 16)
	b = le.AppendUint16(b, 22)   // cbSize
	b = le.AppendUint16(b, 16)   // valid bits
	b = le.AppendUint32(b, 0x3)  // channel mask
	b = le.AppendUint16(b, 0x01) // subformat PCM
	b = append(b, pcmGUIDTail...)
	r, err := NewReader(bytes.NewReader(riff(chunk("fmt ", b), chunk("data", pcm(4, func(int) int16 { return 1 })))))
	if err != nil {
		t.Fatal(err)
	}
	if r.Format.Channels != 2 || r.Format.SampleRate != 48000 {
		t.Errorf("format %+v", r.Format)
	}
	b[24] = 3 // IEEE float subformat
	if _, err := NewReader(bytes.NewReader(riff(chunk("fmt ", b), chunk("data", nil)))); !errors.Is(err, ErrUnsupported) {
		t.Errorf("float extensible: err %v, want ErrUnsupported", err)
	}
}

func TestReaderErrors(t *testing.T) {
	good := riff(chunk("fmt ", fmtBody(formatPCM, 1, 16000, 16)), chunk("data", pcm(8, func(int) int16 { return 0 })))
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short RIFF header", good[:7], ErrTruncated},
		{"not RIFF", append([]byte("RIFX"), good[4:]...), ErrNotWAV},
		{"not WAVE", append(append([]byte{}, good[:8]...), append([]byte("AVI "), good[12:]...)...), ErrNotWAV},
		{"cut in chunk header", good[:15], ErrTruncated},
		{"cut in fmt", good[:30], ErrTruncated},
		{"no data chunk", riff(chunk("fmt ", fmtBody(formatPCM, 1, 16000, 16))), ErrMalformed},
		{"data before fmt", riff(chunk("data", []byte{0, 0}), chunk("fmt ", fmtBody(formatPCM, 1, 16000, 16))), ErrMalformed},
		{"float", riff(chunk("fmt ", fmtBody(3, 1, 16000, 32)), chunk("data", nil)), ErrUnsupported},
		{"8-bit", riff(chunk("fmt ", fmtBody(formatPCM, 1, 16000, 8)), chunk("data", nil)), ErrUnsupported},
		{"24-bit", riff(chunk("fmt ", fmtBody(formatPCM, 2, 48000, 24)), chunk("data", nil)), ErrUnsupported},
		{"zero channels", riff(chunk("fmt ", fmtBody(formatPCM, 0, 16000, 16)), chunk("data", nil)), ErrUnsupported},
		{"zero rate", riff(chunk("fmt ", fmtBody(formatPCM, 1, 0, 16)), chunk("data", nil)), ErrUnsupported},
		{"tiny fmt", riff(chunk("fmt ", make([]byte, 8)), chunk("data", nil)), ErrMalformed},
		{"unknown chunk cut short", append(riff(chunk("fmt ", fmtBody(formatPCM, 1, 16000, 16))), "LIST\x00\x10\x00\x00abc"...), ErrTruncated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(c.raw))
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

func TestReaderTruncatedDataEndsEarly(t *testing.T) {
	raw := riff(chunk("fmt ", fmtBody(formatPCM, 1, 16000, 16)), chunk("data", pcm(100, func(int) int16 { return 7 })))
	r, err := NewReader(bytes.NewReader(raw[:len(raw)-50]))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || len(got) != 150 {
		t.Fatalf("read %d bytes, err %v; want the 150 present", len(got), err)
	}
}

func TestConvertStereo44kToMono16k(t *testing.T) {
	const frames = 44100 // one second
	stereo := make([]byte, 0, frames*4)
	for range frames {
		stereo = binary.LittleEndian.AppendUint16(stereo, uint16(int16(1000)))
		stereo = binary.LittleEndian.AppendUint16(stereo, uint16(int16(3000)))
	}
	raw := riff(chunk("fmt ", fmtBody(formatPCM, 2, 44100, 16)), chunk("data", stereo))
	r, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	conv, err := ToSession(r)
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(conv)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 16000*2 {
		t.Fatalf("got %d bytes, want %d (one second at 16 kHz mono)", len(out), 16000*2)
	}
	for i := 0; i < len(out); i += 2 {
		if v := int16(binary.LittleEndian.Uint16(out[i:])); v != 2000 {
			t.Fatalf("sample %d = %d, want the average 2000", i/2, v)
		}
	}
}

func TestConvertInterpolates(t *testing.T) {
	// 8 kHz ramp to 16 kHz: every other output sample is the midpoint.
	in := pcm(4, func(i int) int16 { return int16(i * 100) })
	conv, err := Convert(bytes.NewReader(in), Format{SampleRate: 8000, Channels: 1, BitsPerSample: 16}, 16000)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(conv)
	var got []int16
	for i := 0; i+1 < len(out); i += 2 {
		got = append(got, int16(binary.LittleEndian.Uint16(out[i:])))
	}
	want := []int16{0, 50, 100, 150, 200, 250, 300, 300}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// oneByte feeds the converter a byte at a time to exercise partial frames.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

func TestConvertLengthsAcrossRates(t *testing.T) {
	for _, c := range []struct{ rate, ch, frames int }{
		{16000, 1, 333}, {48000, 2, 4801}, {22050, 1, 2205}, {11025, 3, 1000}, {8000, 1, 1},
	} {
		data := make([]byte, c.frames*c.ch*2)
		for i := range data {
			data[i] = byte(i * 7)
		}
		data = append(data, 0x55) // trailing partial frame: dropped
		conv, err := Convert(oneByte{bytes.NewReader(data)}, Format{SampleRate: c.rate, Channels: c.ch, BitsPerSample: 16}, 16000)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(conv)
		if err != nil {
			t.Fatal(err)
		}
		want := (c.frames*16000 + c.rate - 1) / c.rate
		if len(out) != 2*want {
			t.Errorf("%d Hz x%d, %d frames: %d samples, want %d", c.rate, c.ch, c.frames, len(out)/2, want)
		}
	}
}

func TestConvertPassesReadError(t *testing.T) {
	boom := errors.New("boom")
	src := io.MultiReader(bytes.NewReader(pcm(10, func(int) int16 { return 1 })), errReader{boom})
	conv, _ := Convert(src, Format{SampleRate: 16000, Channels: 1, BitsPerSample: 16}, 16000)
	out, err := io.ReadAll(conv)
	if !errors.Is(err, boom) || len(out) != 20 {
		t.Fatalf("got %d bytes, err %v; want 20 bytes then boom", len(out), err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func FuzzRead(f *testing.F) {
	f.Add(riff(chunk("fmt ", fmtBody(formatPCM, 2, 44100, 16)), chunk("data", pcm(9, func(i int) int16 { return int16(i) }))))
	f.Add(riff(chunk("LIST", []byte("abc")), chunk("fmt ", fmtBody(formatPCM, 1, 8000, 16)), chunk("data", []byte{1})))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80>\x00\x00\x00}\x00\x00\x02\x00\x10\x00data\xff\xff\xff\xff\x01\x02"))
	f.Add([]byte("RIFF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		conv, err := ToSession(r)
		if err != nil {
			t.Fatalf("ToSession refused a format NewReader accepted: %v", err)
		}
		// Bound the output: a tiny input at 1 Hz can legitimately expand a lot.
		io.Copy(io.Discard, io.LimitReader(conv, 1<<20))
	})
}

func TestEncodeHasExactSizes(t *testing.T) {
	pcm := []byte{1, 0, 2, 0, 3}
	b, err := Encode(pcm, 16000, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(b[40:44]); got != 5 {
		t.Fatalf("data size %d, want 5", got)
	}
	if got := binary.LittleEndian.Uint32(b[4:8]); int(got) != len(b)-8 {
		t.Fatalf("RIFF size %d, want %d", got, len(b)-8)
	}
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	if !bytes.Equal(got, pcm) || r.DataSize != 5 || r.Format.SampleRate != 16000 {
		t.Fatalf("read back %v (size %d, %d Hz)", got, r.DataSize, r.Format.SampleRate)
	}
	if _, err := Encode(nil, 0, 1); err == nil {
		t.Fatal("rate 0 accepted")
	}
}

func TestPCM16RoundTrip(t *testing.T) {
	samples := []int16{0, 1, -1, 32767, -32768, 0x1234}
	b := AppendPCM16([]byte{9}, samples)
	if want := []byte{9, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0x7f, 0, 0x80, 0x34, 0x12}; !bytes.Equal(b, want) {
		t.Fatalf("AppendPCM16 = % x, want % x", b, want)
	}
	got := AppendSamples([]int16{7}, append(b[1:], 0xaa)) // the odd byte is dropped
	if want := append([]int16{7}, samples...); !slices.Equal(got, want) {
		t.Fatalf("AppendSamples = %v, want %v", got, want)
	}
}
