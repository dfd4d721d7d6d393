// One multi-call binary of upstream Kubernetes for the test cluster: the
// program is chosen by the first argument (kt-k8s kube-apiserver --flags…),
// so the control plane, kube-proxy, kubectl and etcd share one build and one
// build cache. Nothing here is ours but this dispatch.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"k8s.io/component-base/cli"
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kt-k8s etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|kubectl [flags]")
		os.Exit(2)
	}
	prog, args := os.Args[1], os.Args[2:]
	switch prog {
	case "etcd":
		etcdmain.Main(append([]string{"etcd"}, args...))
		return
	case "kube-apiserver":
		run(apiserver.NewAPIServerCommand(), args)
	case "kube-controller-manager":
		run(controllermanager.NewControllerManagerCommand(), args)
	case "kube-scheduler":
		run(scheduler.NewSchedulerCommand(), args)
	case "kube-proxy":
		run(proxy.NewProxyCommand(), args)
	case "kubectl":
		// kubectl reads os.Args[0] for its plugin handler and messages.
		os.Args = append([]string{"kubectl"}, args...)
		if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
			// kubectl's own way to print an error and choose the exit code.
			kubectlutil.CheckErr(err)
		}
	default:
		fmt.Fprintf(os.Stderr, "kt-k8s: unknown program %q\n", prog)
		os.Exit(2)
	}
}

func run(cmd *cobra.Command, args []string) {
	cmd.SetArgs(args)
	os.Exit(cli.Run(cmd))
}
