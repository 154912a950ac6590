package discover

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/iotcop/iotcop/proto"
	"github.com/iotcop/iotcop/proto/ssdp"
	"github.com/iotcop/iotcop/target"
)

// DefaultFetchTimeout bounds each description fetch when
// Options.FetchTimeout is zero.
const DefaultFetchTimeout = 3 * time.Second

// fetchDescriptions reads the UPnP description at each device's locations
// (in sorted order; the first value found for a field wins), maxFetches
// devices at a time, for at most 3×timeout in all. Only in-scope addresses are asked, and only for URLs
// on the device's own address (ssdp.FetchDescription refuses others): an
// answer must not steer the scanner elsewhere.
func fetchDescriptions(ctx context.Context, devices []Device, timeout time.Duration) {
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, 3*timeout)
	defer cancel()
	sem := make(chan struct{}, maxFetches)
	var wg sync.WaitGroup
	for i := range devices {
		d := &devices[i]
		if len(d.Locations) == 0 {
			continue
		}
		if !target.InScope(d.Address) {
			d.DescriptionError = "not fetched: " + d.Address.String() + " is not a private or loopback address"
			continue
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				d.DescriptionError = "not fetched: " + ctx.Err().Error()
				return
			}
			defer func() { <-sem }()
			describe(ctx, d, timeout)
		})
	}
	wg.Wait()
}

// describe fetches d's descriptions and fills its empty fields.
func describe(ctx context.Context, d *Device, timeout time.Duration) {
	ep := proto.Endpoint{Host: d.Address.String(), Transport: "tcp", Timeout: timeout}
	var firstErr string
	read := false
	for _, loc := range d.Locations {
		desc, err := ssdp.FetchDescription(ctx, ep, loc)
		if err != nil {
			if firstErr == "" {
				firstErr = clean(err.Error(), maxText)
			}
			continue
		}
		read = true
		d.apply(desc)
	}
	if !read {
		d.DescriptionError = firstErr
	}
}

// apply fills d's empty fields from a description.
func (d *Device) apply(desc ssdp.Description) {
	dev := desc.Device
	fill := func(field *string, values ...string) {
		for _, v := range values {
			if *field != "" {
				return
			}
			*field = clean(v, maxText)
		}
	}
	fill(&d.FriendlyName, dev.FriendlyName)
	fill(&d.Manufacturer, dev.Manufacturer)
	fill(&d.ManufacturerURL, dev.ManufacturerURL)
	fill(&d.Model, dev.ModelName)
	fill(&d.ModelNumber, dev.ModelNumber)
	fill(&d.Serial, dev.SerialNumber)
	fill(&d.FirmwareVersion, dev.FirmwareVersion, dev.SoftwareVersion)
	fill(&d.DeviceType, dev.DeviceType)
	fill(&d.UDN, strings.TrimSpace(dev.UDN))
}
