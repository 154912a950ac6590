package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	maxFTPLine        = 512
	ftpMaxFails       = 3
	ftpDataTimeout    = 10 * time.Second
	defaultFTPGreeter = "(vsFTPd 3.0.3)"
)

// errLineTooLong is returned for a command line over maxFTPLine bytes.
var errLineTooLong = errors.New("line too long")

// readBoundedLine reads one \n-terminated line of at most max bytes
// (without the line end).
func readBoundedLine(r *bufio.Reader, max int) (string, error) {
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			return "", err
		}
		if b == '\n' {
			return strings.TrimSuffix(string(line), "\r"), nil
		}
		if len(line) >= max {
			return "", errLineTooLong
		}
		line = append(line, b)
	}
}

// parseFTPCommand splits a command line into its upper-case verb and its
// argument.
func parseFTPCommand(line string) (cmd, arg string) {
	line = strings.TrimRight(line, "\r\n")
	cmd, arg, _ = strings.Cut(line, " ")
	return strings.ToUpper(strings.TrimSpace(cmd)), strings.TrimSpace(arg)
}

// ftpFS is a small read-only fake filesystem: file path -> content;
// directories are implied by the paths.
type ftpFS map[string]string

func newFTPFS(dev *device) ftpFS {
	return ftpFS{
		"/pub/README.txt":            "Firmware updates for " + dev.vendor + " " + dev.model + ".\n",
		"/pub/firmware/VERSION":      dev.firmware + "\n",
		"/logs/system.log":           "Jan  1 00:00:01 " + dev.hostname + " syslog.info syslogd started: BusyBox v1.31.1\nJan  1 00:00:03 " + dev.hostname + " daemon.info hubd: zigbee network up, 4 devices\n",
		"/backup/config.bak":         "device_name=" + dev.hostname + "\nserial=" + dev.serial + "\nmqtt_host=127.0.0.1\ncloud_sync=enabled\n",
		"/backup/devices.json":       `{"devices":[{"id":1,"name":"livingroom-temp"},{"id":2,"name":"kitchen-light"}]}` + "\n",
		"/etc/" + dev.kind + ".conf": "# " + dev.model + " " + dev.firmware + "\nlisten=0.0.0.0\n",
	}
}

// resolve cleans p against cwd; it never leaves the fake root.
func (fs ftpFS) resolve(cwd, p string) string {
	if p == "" {
		return cwd
	}
	if !strings.HasPrefix(p, "/") {
		p = cwd + "/" + p
	}
	return path.Clean("/" + p)
}

func (fs ftpFS) isDir(p string) bool {
	if p == "/" {
		return true
	}
	for f := range fs {
		if strings.HasPrefix(f, p+"/") {
			return true
		}
	}
	return false
}

// list returns the names directly inside dir, directories marked with a
// trailing slash, sorted.
func (fs ftpFS) list(dir string) []string {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	seen := map[string]bool{}
	for f := range fs {
		if rest, ok := strings.CutPrefix(f, prefix); ok {
			name, _, sub := strings.Cut(rest, "/")
			if sub {
				name += "/"
			}
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ftpSession is one control connection.
type ftpSession struct {
	conn     net.Conn
	r        *bufio.Reader
	rs       RunningService
	fs       ftpFS
	log      *slog.Logger
	user     string // from USER
	loggedIn bool
	fails    int
	cwd      string
	passive  *net.TCPListener
}

// ftpHandler serves one FTP control connection.
func ftpHandler(dev *device, rs RunningService, log *slog.Logger) func(context.Context, net.Conn) {
	fs := newFTPFS(dev)
	return func(_ context.Context, conn net.Conn) {
		s := &ftpSession{conn: conn, r: bufio.NewReaderSize(conn, 1024), rs: rs, fs: fs, log: log, cwd: "/"}
		defer s.closePassive()
		greeting := rs.Banner
		if greeting == "" {
			greeting = defaultFTPGreeter
		}
		if s.reply(220, greeting) != nil {
			return
		}
		for {
			line, err := readBoundedLine(s.r, maxFTPLine)
			if errors.Is(err, errLineTooLong) {
				_ = s.reply(500, "Input line too long.")
				return
			}
			if err != nil {
				return
			}
			cmd, arg := parseFTPCommand(line)
			if quit := s.command(cmd, arg); quit {
				return
			}
		}
	}
}

func (s *ftpSession) reply(code int, text string) error {
	_, err := fmt.Fprintf(s.conn, "%d %s\r\n", code, text)
	return err
}

// command runs one command; it returns true when the session ends.
func (s *ftpSession) command(cmd, arg string) bool {
	switch cmd {
	case "":
		return false
	case "USER":
		s.user, s.loggedIn = arg, false
		return s.reply(331, "Please specify the password.") != nil
	case "PASS":
		if s.user == "" {
			return s.reply(503, "Login with USER first.") != nil
		}
		anonymous := s.user == "anonymous" || s.user == "ftp"
		if (anonymous && s.rs.NoAuth) || (!anonymous && s.rs.Username != "" && s.user == s.rs.Username && arg == s.rs.Password) {
			s.loggedIn = true
			return s.reply(230, "Login successful.") != nil
		}
		s.user = ""
		s.fails++
		if s.reply(530, "Login incorrect.") != nil {
			return true
		}
		return s.fails >= ftpMaxFails
	case "QUIT":
		_ = s.reply(221, "Goodbye.")
		return true
	case "SYST":
		return s.reply(215, "UNIX Type: L8") != nil
	case "FEAT":
		_, err := io.WriteString(s.conn, "211-Features:\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n")
		return err != nil
	case "OPTS":
		if strings.EqualFold(arg, "UTF8 ON") {
			return s.reply(200, "Always in UTF8 mode.") != nil
		}
		return s.reply(501, "Option not understood.") != nil
	case "NOOP":
		return s.reply(200, "NOOP ok.") != nil
	case "HELP":
		_, err := io.WriteString(s.conn, "214-The following commands are recognized.\r\n ABOR CDUP CWD EPSV FEAT HELP LIST MDTM NLST NOOP OPTS PASS PASV PWD QUIT RETR SIZE SYST TYPE USER XPWD\r\n214 Help OK.\r\n")
		return err != nil
	}
	if !s.loggedIn {
		return s.reply(530, "Please login with USER and PASS.") != nil
	}
	switch cmd {
	case "PWD", "XPWD":
		return s.reply(257, strconv.Quote(s.cwd)+" is the current directory") != nil
	case "CWD", "XCWD", "CDUP", "XCUP":
		target := arg
		if cmd == "CDUP" || cmd == "XCUP" {
			target = ".."
		}
		p := s.fs.resolve(s.cwd, target)
		if !s.fs.isDir(p) {
			return s.reply(550, "Failed to change directory.") != nil
		}
		s.cwd = p
		return s.reply(250, "Directory successfully changed.") != nil
	case "TYPE":
		switch strings.ToUpper(arg) {
		case "I", "L 8":
			return s.reply(200, "Switching to Binary mode.") != nil
		case "A", "A N":
			return s.reply(200, "Switching to ASCII mode.") != nil
		}
		return s.reply(500, "Unrecognised TYPE command.") != nil
	case "MODE", "STRU":
		return s.reply(200, "Mode set.") != nil
	case "PASV", "EPSV":
		return s.openPassive(cmd == "EPSV")
	case "PORT", "EPRT":
		return s.reply(500, "Illegal PORT command.") != nil
	case "LIST", "NLST":
		return s.transferList(cmd == "NLST", arg)
	case "RETR":
		return s.transferFile(arg)
	case "SIZE":
		content, ok := s.fs[s.fs.resolve(s.cwd, arg)]
		if !ok {
			return s.reply(550, "Could not get file size.") != nil
		}
		return s.reply(213, strconv.Itoa(len(content))) != nil
	case "MDTM":
		if _, ok := s.fs[s.fs.resolve(s.cwd, arg)]; !ok {
			return s.reply(550, "Could not get file modification time.") != nil
		}
		return s.reply(213, "20230314092653") != nil
	case "REST":
		return s.reply(350, "Restart position accepted ("+arg+").") != nil
	case "ABOR":
		s.closePassive()
		return s.reply(225, "No transfer to ABOR.") != nil
	case "STOR", "STOU", "APPE", "DELE", "MKD", "XMKD", "RMD", "XRMD", "RNFR", "RNTO", "SITE":
		return s.reply(550, "Permission denied.") != nil
	}
	return s.reply(500, "Unknown command.") != nil
}

func (s *ftpSession) closePassive() {
	if s.passive != nil {
		_ = s.passive.Close()
		s.passive = nil
	}
}

// openPassive listens for one data connection on the device's address.
func (s *ftpSession) openPassive(extended bool) bool {
	s.closePassive()
	host, _, _ := net.SplitHostPort(s.conn.LocalAddr().String())
	ln, err := net.Listen("tcp4", net.JoinHostPort(host, "0"))
	if err != nil {
		return s.reply(425, "Security: Bad IP connecting.") != nil
	}
	s.passive = ln.(*net.TCPListener)
	port := ln.Addr().(*net.TCPAddr).Port
	if extended {
		return s.reply(229, fmt.Sprintf("Entering Extended Passive Mode (|||%d|)", port)) != nil
	}
	ip := net.ParseIP(host).To4()
	return s.reply(227, fmt.Sprintf("Entering Passive Mode (%d,%d,%d,%d,%d,%d).", ip[0], ip[1], ip[2], ip[3], port>>8, port&0xff)) != nil
}

// dataConn accepts the client's data connection on the passive listener;
// only the control connection's peer may connect.
func (s *ftpSession) dataConn() (net.Conn, error) {
	if s.passive == nil {
		return nil, errors.New("no passive listener")
	}
	defer s.closePassive()
	_ = s.passive.SetDeadline(time.Now().Add(ftpDataTimeout))
	c, err := s.passive.Accept()
	if err != nil {
		return nil, err
	}
	peer, _, _ := net.SplitHostPort(s.conn.RemoteAddr().String())
	from, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	if peer != from {
		_ = c.Close()
		return nil, errors.New("data connection from another host")
	}
	_ = c.SetDeadline(time.Now().Add(ftpDataTimeout))
	return c, nil
}

func (s *ftpSession) transferList(namesOnly bool, arg string) bool {
	// Ignore ls-style options ("LIST -la").
	var target string
	for f := range strings.FieldsSeq(arg) {
		if !strings.HasPrefix(f, "-") {
			target = f
		}
	}
	if s.passive == nil {
		return s.reply(425, "Use PORT or PASV first.") != nil
	}
	p := s.fs.resolve(s.cwd, target)
	var b strings.Builder
	if content, isFile := s.fs[p]; isFile {
		writeListEntry(&b, path.Base(p), len(content), false, namesOnly)
	} else if s.fs.isDir(p) {
		for _, name := range s.fs.list(p) {
			dir := strings.HasSuffix(name, "/")
			name = strings.TrimSuffix(name, "/")
			writeListEntry(&b, name, len(s.fs[path.Join(p, name)]), dir, namesOnly)
		}
	}
	return s.sendData("Here comes the directory listing.", "Directory send OK.", b.String())
}

func writeListEntry(b *strings.Builder, name string, size int, dir, namesOnly bool) {
	if namesOnly {
		b.WriteString(name + "\r\n")
		return
	}
	mode := "-rw-r--r--"
	if dir {
		mode, size = "drwxr-xr-x", 4096
	}
	fmt.Fprintf(b, "%s    1 0        0        %8d Mar 14  2023 %s\r\n", mode, size, name)
}

func (s *ftpSession) transferFile(arg string) bool {
	content, ok := s.fs[s.fs.resolve(s.cwd, arg)]
	if !ok {
		return s.reply(550, "Failed to open file.") != nil
	}
	if s.passive == nil {
		return s.reply(425, "Use PORT or PASV first.") != nil
	}
	return s.sendData(fmt.Sprintf("Opening BINARY mode data connection for %s (%d bytes).", path.Base(arg), len(content)),
		"Transfer complete.", content)
}

func (s *ftpSession) sendData(opening, done, data string) bool {
	c, err := s.dataConn()
	if err != nil {
		return s.reply(425, "Failed to establish connection.") != nil
	}
	if s.reply(150, opening) != nil {
		_ = c.Close()
		return true
	}
	_, err = io.WriteString(c, data)
	_ = c.Close()
	if err != nil {
		return s.reply(426, "Failure writing network stream.") != nil
	}
	return s.reply(226, done) != nil
}
