// Command validate checks Envoy bootstrap files the way `envoy --mode validate`
// would, as far as that is possible without an Envoy binary: each file is
// decoded into the v3 Bootstrap message (unknown fields and unresolvable
// typed_config types are errors), every message is checked against Envoy's
// own validation rules (protoc-gen-validate, including messages packed in
// typed_config), and the static references Envoy resolves at start are
// checked (every route names a defined cluster, names and ports are unique).
//
// Usage: validate FILE... ; prints one line per problem, exits 1 on any.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	// Extensions the configs may name in typed_config: importing a package
	// registers its messages, so protojson can resolve the Any.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/buffer/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

type validator interface{ ValidateAll() error }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: validate FILE...")
		os.Exit(2)
	}
	failed := false
	for _, path := range os.Args[1:] {
		problems := validateFile(path)
		for _, p := range problems {
			fmt.Printf("%s: %s\n", path, p)
		}
		if len(problems) > 0 {
			failed = true
		} else {
			fmt.Printf("%s: valid v3 Bootstrap\n", path)
		}
	}
	if failed {
		os.Exit(1)
	}
}

func validateFile(path string) []string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return []string{err.Error()}
	}
	json, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return []string{"not YAML: " + err.Error()}
	}
	var bootstrap bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{}).Unmarshal(json, &bootstrap); err != nil {
		return []string{"not a v3 Bootstrap: " + err.Error()}
	}
	problems := validateTree(&bootstrap, "bootstrap")
	problems = append(problems, checkReferences(&bootstrap)...)
	return problems
}

// validateTree runs the message's validation rules, then those of every
// message packed in an Any below it (ValidateAll does not look inside Any).
func validateTree(m proto.Message, where string) []string {
	var problems []string
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			for _, e := range flatten(err) {
				problems = append(problems, fmt.Sprintf("%s: %s", where, e))
			}
		}
	}
	for _, packed := range anysIn(m.ProtoReflect()) {
		inner, err := packed.any.UnmarshalNew()
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s.%s: %s", where, packed.path, err))
			continue
		}
		problems = append(problems, validateTree(inner, where+"."+packed.path+"<"+string(inner.ProtoReflect().Descriptor().FullName())+">")...)
	}
	return problems
}

type packedAny struct {
	path string
	any  *anypb.Any
}

// anysIn lists the Any messages reachable from m without crossing another Any.
func anysIn(m protoreflect.Message) []packedAny {
	var found []packedAny
	var walk func(m protoreflect.Message, path string)
	walk = func(m protoreflect.Message, path string) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			name := path + string(fd.Name())
			visit := func(item protoreflect.Message, at string) {
				if a, ok := item.Interface().(*anypb.Any); ok {
					found = append(found, packedAny{path: at, any: a})
					return
				}
				walk(item, at+".")
			}
			switch {
			case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
				list := v.List()
				for i := 0; i < list.Len(); i++ {
					visit(list.Get(i).Message(), fmt.Sprintf("%s[%d]", name, i))
				}
			case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(mv.Message(), fmt.Sprintf("%s[%s]", name, k.String()))
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Kind() == protoreflect.MessageKind:
				visit(v.Message(), name)
			}
			return true
		})
	}
	walk(m, "")
	return found
}

// flatten splits a protoc-gen-validate multi-error into its causes.
func flatten(err error) []string {
	var multi interface{ AllErrors() []error }
	if errors.As(err, &multi) {
		var out []string
		for _, e := range multi.AllErrors() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// checkReferences does what Envoy checks when it loads static resources:
// unique listener and cluster names, one listener per port, and every route
// (in every HTTP connection manager) names a cluster that exists.
func checkReferences(b *bootstrapv3.Bootstrap) []string {
	var problems []string
	clusters := map[string]bool{}
	for _, c := range b.GetStaticResources().GetClusters() {
		if clusters[c.GetName()] {
			problems = append(problems, "duplicate cluster "+c.GetName())
		}
		clusters[c.GetName()] = true
	}
	listeners := map[string]bool{}
	ports := map[uint32]string{}
	for _, l := range b.GetStaticResources().GetListeners() {
		if listeners[l.GetName()] {
			problems = append(problems, "duplicate listener "+l.GetName())
		}
		listeners[l.GetName()] = true
		port := l.GetAddress().GetSocketAddress().GetPortValue()
		if other, taken := ports[port]; taken {
			problems = append(problems, fmt.Sprintf("listeners %s and %s both bind port %d", other, l.GetName(), port))
		}
		ports[port] = l.GetName()
		for _, hcm := range connectionManagers(l) {
			for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
				for i, r := range vh.GetRoutes() {
					if name := clusterOf(r); name != "" && !clusters[name] {
						problems = append(problems, fmt.Sprintf("listener %s, virtual host %s, route %d: unknown cluster %q", l.GetName(), vh.GetName(), i, name))
					}
				}
			}
			if hcm.GetRds() != nil {
				problems = append(problems, fmt.Sprintf("listener %s: RDS is not used by this project; routes must be inline", l.GetName()))
			}
		}
	}
	sort.Strings(problems)
	return problems
}

func connectionManagers(l *listenerv3.Listener) []*hcmv3.HttpConnectionManager {
	var out []*hcmv3.HttpConnectionManager
	for _, chain := range l.GetFilterChains() {
		for _, f := range chain.GetFilters() {
			if !strings.HasSuffix(f.GetTypedConfig().GetTypeUrl(), "HttpConnectionManager") {
				continue
			}
			var hcm hcmv3.HttpConnectionManager
			if err := f.GetTypedConfig().UnmarshalTo(&hcm); err == nil {
				out = append(out, &hcm)
			}
		}
	}
	return out
}

func clusterOf(r *routev3.Route) string {
	if a := r.GetRoute(); a != nil {
		return a.GetCluster()
	}
	return ""
}
