// pion_call: a pion/webrtc v3 peer with the same JSON-lines contract as
// `rtc-conformance peer call` (docs/conformance.md), so the interop suite
// can put it on either side of a call with rtc:
//
//	pion_call --role offer|answer [--audio] [--video] [--seconds N] [--video-file F.ivf]
//
// With --role offer it prints {"type":"offer","sdp":"…"} once ICE gathering
// is complete, then reads {"type":"answer","sdp":"…"} from stdin; with
// --role answer it reads the offer line and prints the answer line. Host
// candidates are on 127.0.0.1 only (UDP over IPv4, loopback, no mDNS).
// Once connected it sends, for --seconds, Opus silence (one 3-octet frame
// every 20 ms) and the VP8 frames of --video-file (looped, 33 ms apart),
// and counts what it receives. Its last stdout line is
// {"result":{"connected_ms":…,"ice":…,"dtls":…,"selected_pair":…,
// "audio":{"packets_sent":…,"packets_received":…,"frames_received":…},
// "video":{…},"ok":…}}; exit status 0 when connected and every kind asked
// for flowed both ways. Logs (PION_LOG_DEBUG=all and friends) go to stderr.
//
// Built offline against Debian's golang-github-pion-webrtc.v3-dev in GOPATH
// mode (scripts/install-peers.sh); this directory's go.mod only makes Go's
// minimal module compatibility resolve the /v3 import paths.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
	"github.com/pion/webrtc/v3/pkg/media/ivfreader"
)

// opusSilence is one 20 ms Opus frame of silence (TOC 0xf8: CELT
// fullband, one frame).
var opusSilence = []byte{0xf8, 0xff, 0xfe}

// counts holds one kind's counters.
type counts struct {
	packetsSent     uint64
	packetsReceived uint64
	framesReceived  uint64
}

var audioCounts, videoCounts counts

func countsOf(mime string) *counts {
	if strings.HasPrefix(strings.ToLower(mime), "audio/") {
		return &audioCounts
	}
	return &videoCounts
}

// sentCounter is an interceptor that counts the RTP packets each local
// stream writes (pion 3.1 has no outbound-rtp statistics).
type sentCounter struct {
	interceptor.NoOp
}

func (*sentCounter) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	c := countsOf(info.MimeType)
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		n, err := writer.Write(h, payload, a)
		if err == nil {
			atomic.AddUint64(&c.packetsSent, 1)
		}
		return n, err
	})
}

type sentCounterFactory struct{}

func (sentCounterFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &sentCounter{}, nil
}

func say(v interface{}) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pion_call: json:", err)
		return
	}
	fmt.Println(string(b))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pion_call:", err)
	say(map[string]interface{}{"result": map[string]interface{}{"ok": false, "error": err.Error()}})
	os.Exit(1)
}

// check fails the call on an error.
func check(err error) {
	if err != nil {
		fail(err)
	}
}

// readLine reads one JSON line {"type":…,"sdp":…} from stdin.
func readLine(in *bufio.Scanner, want string) (webrtc.SessionDescription, error) {
	var line struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	}
	if !in.Scan() {
		if err := in.Err(); err != nil {
			return webrtc.SessionDescription{}, err
		}
		return webrtc.SessionDescription{}, errors.New("stdin closed before the " + want + " line")
	}
	if err := json.Unmarshal(in.Bytes(), &line); err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("not a JSON line: %v: %s", err, in.Text())
	}
	if line.SDP == "" {
		return webrtc.SessionDescription{}, fmt.Errorf("the %s line has no \"sdp\"", want)
	}
	sdpType := webrtc.SDPTypeOffer
	if want == "answer" {
		sdpType = webrtc.SDPTypeAnswer
	}
	return webrtc.SessionDescription{Type: sdpType, SDP: line.SDP}, nil
}

// ivfFrames reads every frame of an IVF file.
func ivfFrames(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, header, err := ivfreader.NewWith(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if header.FourCC != "VP80" {
		return nil, fmt.Errorf("%s: %q, not VP8", path, header.FourCC)
	}
	var frames [][]byte
	for {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		frames = append(frames, frame)
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%s: no frame", path)
	}
	return frames, nil
}

func newAPI(lite bool) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	ir.Add(sentCounterFactory{})
	s := webrtc.SettingEngine{}
	// pion logs to stdout by default, which would break the JSON lines.
	logs := logging.NewDefaultLoggerFactory()
	logs.Writer = os.Stderr
	s.LoggerFactory = logs
	// Host candidates on 127.0.0.1 only.
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetIncludeLoopbackCandidate(true)
	s.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	s.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IPv4(127, 0, 0, 1)) })
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// ICE lite (RFC 8445 section 2.5): host candidates only, no checks of
	// its own, a=ice-lite in its descriptions.
	s.SetLite(lite)
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s), webrtc.WithInterceptorRegistry(ir)), nil
}

func main() {
	role := flag.String("role", "", "offer or answer")
	withAudio := flag.Bool("audio", false, "send and expect Opus audio")
	withVideo := flag.Bool("video", false, "send and expect VP8 video")
	seconds := flag.Float64("seconds", 5, "how long media flows once connected")
	videoFile := flag.String("video-file", "conformance/fixtures/media/vp8-160x120.ivf", "IVF file of VP8 frames, looped")
	lite := flag.Bool("ice-lite", false, "run ICE lite (the other side must control and nominate)")
	flag.Parse()
	if *role != "offer" && *role != "answer" {
		fail(errors.New("--role offer|answer is required"))
	}
	var frames [][]byte
	if *withVideo {
		var err error
		frames, err = ivfFrames(*videoFile)
		check(err)
	}
	api, err := newAPI(*lite)
	check(err)
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	check(err)
	defer pc.Close()

	var mu sync.Mutex
	var connectedAt time.Time
	iceState, dtlsState := "failed", "failed"
	connected := make(chan struct{})
	failed := make(chan struct{})
	var once, failOnce sync.Once
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		fmt.Fprintln(os.Stderr, "pion_call: ICE", s)
		if s == webrtc.ICEConnectionStateConnected || s == webrtc.ICEConnectionStateCompleted {
			mu.Lock()
			iceState = "connected"
			mu.Unlock()
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		fmt.Fprintln(os.Stderr, "pion_call: connection", s)
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once.Do(func() {
				mu.Lock()
				connectedAt = time.Now()
				dtlsState = "connected"
				mu.Unlock()
				close(connected)
			})
		case webrtc.PeerConnectionStateFailed:
			failOnce.Do(func() { close(failed) })
		}
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		kind := t.Kind()
		fmt.Fprintln(os.Stderr, "pion_call: remote track", kind, t.Codec().MimeType, "ssrc", t.SSRC())
		c := countsOf(kind.String() + "/")
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			atomic.AddUint64(&c.packetsReceived, 1)
			// Opus: a packet is a frame; VP8: a frame ends at the marker bit.
			if kind == webrtc.RTPCodecTypeAudio || p.Marker {
				atomic.AddUint64(&c.framesReceived, 1)
			}
		}
	})

	var audioTrack, videoTrack *webrtc.TrackLocalStaticSample
	addTracks := func() error {
		add := func(t *webrtc.TrackLocalStaticSample) error {
			sender, err := pc.AddTrack(t)
			if err != nil {
				return err
			}
			// Read RTCP so the interceptors (reports, NACK) run.
			go func() {
				buf := make([]byte, 1500)
				for {
					if _, _, err := sender.Read(buf); err != nil {
						return
					}
				}
			}()
			return nil
		}
		if *withAudio {
			t, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "pion")
			if err != nil {
				return err
			}
			audioTrack = t
			if err := add(t); err != nil {
				return err
			}
		}
		if *withVideo {
			t, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pion")
			if err != nil {
				return err
			}
			videoTrack = t
			if err := add(t); err != nil {
				return err
			}
		}
		return nil
	}

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	// publish sets a created description as the local one and prints it
	// once ICE gathering is complete (its candidates are in it then).
	publish := func(d webrtc.SessionDescription, err error) {
		check(err)
		done := webrtc.GatheringCompletePromise(pc)
		check(pc.SetLocalDescription(d))
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			fail(errors.New("ICE gathering not complete within 5 s"))
		}
		say(map[string]string{"type": d.Type.String(), "sdp": pc.LocalDescription().SDP})
	}
	var asked time.Time
	if *role == "offer" {
		check(addTracks())
		publish(pc.CreateOffer(nil))
		answer, err := readLine(in, "answer")
		check(err)
		asked = time.Now()
		if err := pc.SetRemoteDescription(answer); err != nil {
			fail(fmt.Errorf("the answer: %v", err))
		}
	} else {
		offer, err := readLine(in, "offer")
		check(err)
		if err := pc.SetRemoteDescription(offer); err != nil {
			fail(fmt.Errorf("the offer: %v", err))
		}
		// After the offer, so the tracks take the offer's transceivers.
		check(addTracks())
		publish(pc.CreateAnswer(nil))
		asked = time.Now()
	}

	isConnected := false
	select {
	case <-connected:
		isConnected = true
	case <-failed:
	case <-time.After(10 * time.Second):
	}
	if isConnected {
		fmt.Fprintln(os.Stderr, "pion_call: connected")
	} else {
		fmt.Fprintln(os.Stderr, "pion_call: not connected within 10 s")
	}
	duration := time.Duration(0)
	if isConnected {
		duration = time.Duration(*seconds * float64(time.Second))
	}
	until := time.Now().Add(duration)
	var wg sync.WaitGroup
	send := func(t *webrtc.TrackLocalStaticSample, every time.Duration, next func() []byte) {
		defer wg.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for time.Now().Before(until) {
			if err := t.WriteSample(media.Sample{Data: next(), Duration: every}); err != nil {
				fmt.Fprintln(os.Stderr, "pion_call: write:", err)
			}
			<-tick.C
		}
	}
	if isConnected && audioTrack != nil {
		wg.Add(1)
		go send(audioTrack, 20*time.Millisecond, func() []byte { return opusSilence })
	}
	if isConnected && videoTrack != nil {
		i := 0
		wg.Add(1)
		go send(videoTrack, 33*time.Millisecond, func() []byte {
			f := frames[i%len(frames)]
			i++
			return f
		})
	}
	wg.Wait()
	time.Sleep(time.Until(until.Add(500 * time.Millisecond)))

	pair := map[string]interface{}{}
	if p, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && p != nil {
		pair["local"] = p.Local.Typ.String()
		pair["remote"] = p.Remote.Typ.String()
	}
	kindResult := func(c *counts) map[string]uint64 {
		return map[string]uint64{
			"packets_sent":     atomic.LoadUint64(&c.packetsSent),
			"packets_received": atomic.LoadUint64(&c.packetsReceived),
			"frames_received":  atomic.LoadUint64(&c.framesReceived),
		}
	}
	flowed := func(r map[string]uint64) bool {
		return r["packets_sent"] > 0 && r["packets_received"] > 0 && r["frames_received"] > 0
	}
	mu.Lock()
	result := map[string]interface{}{"ice": iceState, "dtls": dtlsState, "selected_pair": pair, "connected_ms": nil}
	if isConnected {
		result["connected_ms"] = float64(connectedAt.Sub(asked).Microseconds()) / 1000
	}
	mu.Unlock()
	ok := isConnected
	if *withAudio {
		r := kindResult(&audioCounts)
		result["audio"] = r
		ok = ok && flowed(r)
	}
	if *withVideo {
		r := kindResult(&videoCounts)
		result["video"] = r
		ok = ok && flowed(r)
	}
	result["ok"] = ok
	say(map[string]interface{}{"result": result})
	_ = pc.Close()
	if !ok {
		os.Exit(1)
	}
}
