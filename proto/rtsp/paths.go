package rtsp

import (
	_ "embed"
	"strings"
)

// routesFile is cameradar's list of stream paths (MIT, see data/SOURCES.md).
//
//go:embed data/routes.txt
var routesFile string

// priorityPaths are the stream paths most cameras answer on, tried before
// the long list: the root, then the defaults of the commonest camera
// firmwares (Hikvision, Dahua, Reolink, Axis, generic live555/Hipcam ones).
var priorityPaths = []string{
	"",
	"live.sdp",
	"Streaming/Channels/101",
	"Streaming/Channels/1",
	"cam/realmonitor?channel=1&subtype=0",
	"h264Preview_01_main",
	"11",
	"live/ch00_0",
	"stream1",
	"live",
	"h264",
	"axis-media/media.amp",
	"onvif1",
	"media/video1",
	"videoMain",
	"live/main",
	"ch0_0.h264",
	"video1",
	"stream",
	"1",
}

// DefaultPaths returns the built-in stream paths in the order they are
// tried (without the leading slash; "" is the root). Protocol.MaxPaths
// bounds how many of them are used.
func DefaultPaths() []string {
	seen := map[string]bool{}
	var out []string
	add := func(p string) {
		p = strings.TrimPrefix(strings.TrimSpace(p), "/")
		if seen[p] || !validPath(p) {
			return
		}
		seen[p] = true
		out = append(out, p)
	}
	for _, p := range priorityPaths {
		add(p)
	}
	for _, p := range strings.Split(routesFile, "\n") {
		add(p)
	}
	return out
}

// validPath rejects paths that would break the request line.
func validPath(p string) bool {
	return !strings.ContainsAny(p, " \t\r\n\x00")
}
