package lab

// ShiftPrivilegedPorts returns a copy of c in which every service port
// below 1024 (after defaults are applied) is moved up by offset, so that a
// user who may not bind privileged ports can still run the fleet. Scanners
// identify services by behaviour, so port 10023 still shows up as telnet.
func (c Config) ShiftPrivilegedPorts(offset int) Config {
	out := Config{Devices: make([]DeviceSpec, len(c.Devices))}
	for i, d := range c.Devices {
		d.Services = append([]ServiceSpec(nil), d.Services...)
		for j, s := range d.Services {
			rs := resolveService(s)
			if rs.Port < 1024 {
				d.Services[j].Port = rs.Port + offset
			}
		}
		out.Devices[i] = d
	}
	return out
}

// LowestPort returns the smallest port any service of c binds.
func (c Config) LowestPort() int {
	lowest := 65536
	for _, d := range c.Devices {
		for _, s := range d.Services {
			if p := resolveService(s).Port; p < lowest {
				lowest = p
			}
		}
	}
	return lowest
}
