package lab

import "testing"

func TestShiftPrivilegedPorts(t *testing.T) {
	cfg := DefaultConfig(0)
	if cfg.LowestPort() != 21 {
		t.Fatalf("default fleet lowest port %d, want 21 (ftp)", cfg.LowestPort())
	}
	shifted := cfg.ShiftPrivilegedPorts(10000)
	if shifted.LowestPort() < 1024 {
		t.Fatalf("shifted fleet still binds port %d", shifted.LowestPort())
	}
	if cfg.LowestPort() != 21 {
		t.Fatal("ShiftPrivilegedPorts modified its receiver")
	}
	for i, d := range shifted.Devices {
		for j, s := range d.Services {
			orig := resolveService(cfg.Devices[i].Services[j]).Port
			got := resolveService(s).Port
			if orig < 1024 && got != orig+10000 || orig >= 1024 && got != orig {
				t.Errorf("%s %s: port %d became %d", d.Name, s.Protocol, orig, got)
			}
		}
	}
}

func TestWebFleet(t *testing.T) {
	cfg := WebFleet(5)
	if len(cfg.Devices) != 5 {
		t.Fatalf("%d devices", len(cfg.Devices))
	}
	for i, d := range cfg.Devices {
		s := d.Services[0]
		universal := s.Password == "admin" && !s.RandomPassword
		if universal != (i%2 == 0) || s.Port != 8080 || s.Protocol != "http" {
			t.Errorf("device %d: %+v", i, s)
		}
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
