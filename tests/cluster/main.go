// Command testcluster is the lmaas test control plane: one binary holding etcd,
// kube-apiserver and kube-controller-manager, built from the published Go
// modules because no prebuilt release binaries can be downloaded here.
//
// Each component runs as its own process (`testcluster etcd ...`,
// `testcluster kube-apiserver ...`): they install global signal handlers,
// flags, metrics registries and feature gates that are not safe to share.
// The Python launcher (launcher.py) wires them together.
package main

import (
	"fmt"
	"os"
	_ "time/tzdata" // CronJob time zones, as in the upstream mains

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json, as upstream
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics, as upstream
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric, as upstream
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

const usage = `usage: testcluster COMMAND [ARGS...]

commands:
  etcd --data-dir DIR --listen-client-url URL --listen-peer-url URL
  kube-apiserver ARGS...           (flags of the upstream kube-apiserver)
  kube-controller-manager ARGS...  (flags of the upstream kube-controller-manager)
  certs DIR                        (CA, serving, admin and service-account keys)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	watchParent()
	cmd, args := os.Args[1], os.Args[2:]
	switch cmd {
	case "etcd":
		os.Exit(runEtcd(args))
	case "kube-apiserver":
		os.Exit(runCobra(apiserver.NewAPIServerCommand(), args))
	case "kube-controller-manager":
		os.Exit(runCobra(controllermanager.NewControllerManagerCommand(), args))
	case "certs":
		os.Exit(runCerts(args))
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s", cmd, usage)
		os.Exit(2)
	}
}

// runCobra runs an upstream command exactly as its own main would, except that
// cobra must be told the args: by default it would read os.Args[1:], which
// still holds our subcommand name.
func runCobra(c *cobra.Command, args []string) int {
	c.SetArgs(args)
	return cli.Run(c)
}
