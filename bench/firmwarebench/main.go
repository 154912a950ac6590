// Command firmwarebench runs the full firmware analysis (firmware.Analyze)
// on one image and prints a one-line summary, for bench/firmware.sh until
// the `iotcop firmware` subcommand is wired in.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sort"
	"strings"

	"github.com/iotcop/iotcop/firmware"
)

func main() {
	asJSON := flag.Bool("json", false, "print the whole result as JSON")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: firmwarebench [-json] IMAGE")
		os.Exit(2)
	}
	res, err := firmware.Analyze(context.Background(), flag.Arg(0), firmware.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		return
	}
	byCheck := map[string]int{}
	for _, f := range res.Findings {
		byCheck[f.Check]++
	}
	var checks []string
	for c, n := range byCheck {
		checks = append(checks, fmt.Sprintf("%s=%d", c, n))
	}
	sort.Strings(checks)
	var layers []string
	for _, l := range res.Layers[1:] {
		layers = append(layers, fmt.Sprintf("%s@0x%x:%s", l.Format, l.Offset, l.Status))
	}
	fmt.Printf("files=%d layers=[%s] findings=%d %s\n", res.Files, strings.Join(layers, " "), len(res.Findings), strings.Join(checks, " "))
}
