package tpmsim_test

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// api type-checks one variant of this package, from its source file alone,
// and returns its exported API: each exported object, and each method of
// an exported type, as a line of text.
func api(t *testing.T, file string, imp types.Importer) (map[string]bool, *ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	conf := types.Config{Importer: imp}
	pkg, err := conf.Check("github.com/attested-tls/go-expat/attester/tpm/tpmsim", fset, []*ast.File{f}, nil)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := map[string]bool{}
	q := types.RelativeTo(pkg)
	for _, name := range pkg.Scope().Names() {
		obj := pkg.Scope().Lookup(name)
		if !obj.Exported() {
			continue
		}
		switch obj := obj.(type) {
		case *types.TypeName:
			// The name and kind of type; fields are unexported.
			out[fmt.Sprintf("type %s %T", name, obj.Type().Underlying())] = true
			ms := types.NewMethodSet(types.NewPointer(obj.Type()))
			for i := 0; i < ms.Len(); i++ {
				if m := ms.At(i).Obj(); m.Exported() {
					out[fmt.Sprintf("method (*%s).%s%s", name, m.Name(), signature(m.Type().(*types.Signature), q))] = true
				}
			}
		case *types.Func:
			out[fmt.Sprintf("func %s%s", name, signature(obj.Type().(*types.Signature), q))] = true
		default:
			out[fmt.Sprintf("%T %s %s", obj, name, types.TypeString(obj.Type(), q))] = true
		}
	}
	return out, f
}

// TestNoCgoVariantAPI: the no-cgo build of this package (nocgo.go) has
// exactly the API of the cgo build (tpmsim.go), so whatever compiles
// against one compiles against the other (examples/quickstart relies on
// it instead of building itself without cgo), and its Open returns
// ErrNoCgo.
func TestNoCgoVariantAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	// Export data of the cgo build's dependencies (cached by this very
	// test's build).
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}={{.Export}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	export := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if p, file, ok := strings.Cut(line, "="); ok && file != "" {
			export[p] = file
		}
	}
	imp := importer.ForCompiler(token.NewFileSet(), "gc", func(path string) (io.ReadCloser, error) {
		return os.Open(export[path])
	})
	withCgo, _ := api(t, "tpmsim.go", imp)
	without, f := api(t, "nocgo.go", imp)
	if len(withCgo) < 5 {
		t.Fatalf("implausible API %v", withCgo)
	}
	for _, d := range diff(withCgo, without) {
		t.Errorf("only with cgo: %s", d)
	}
	for _, d := range diff(without, withCgo) {
		t.Errorf("only without cgo: %s", d)
	}

	// func Open() (*Simulator, error) { return nil, ErrNoCgo }
	ok := false
	for _, d := range f.Decls {
		fd, isFunc := d.(*ast.FuncDecl)
		if !isFunc || fd.Name.Name != "Open" || fd.Recv != nil || len(fd.Body.List) != 1 {
			continue
		}
		ret, isRet := fd.Body.List[0].(*ast.ReturnStmt)
		if isRet && len(ret.Results) == 2 {
			n, _ := ret.Results[0].(*ast.Ident)
			e, _ := ret.Results[1].(*ast.Ident)
			ok = n != nil && n.Name == "nil" && e != nil && e.Name == "ErrNoCgo"
		}
	}
	if !ok {
		t.Error("nocgo.go: Open does not just return nil, ErrNoCgo")
	}
}

// signature is sig's parameter and result types, without their names.
func signature(sig *types.Signature, q types.Qualifier) string {
	tuple := func(t *types.Tuple) string {
		var parts []string
		for i := 0; i < t.Len(); i++ {
			parts = append(parts, types.TypeString(t.At(i).Type(), q))
		}
		return "(" + strings.Join(parts, ", ") + ")"
	}
	return tuple(sig.Params()) + " " + tuple(sig.Results())
}

func diff(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
