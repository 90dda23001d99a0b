// Command registry is the image registry a Swarm runs for itself where none can be reached: a
// Docker registry API (go-containerregistry's implementation) with blobs on disk, so that `docker
// stack deploy` resolves each service's image to a digest and every node pulls the same bytes.
// Manifests live in memory: after a restart, push the images again (deploy/swarm-images.sh).
//
//	registry -addr :5000 -dir /var/lib/registry
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	addr := flag.String("addr", ":5000", "listen address")
	dir := flag.String("dir", "/var/lib/registry", "directory of the blobs")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Addr:              *addr,
		Handler:           registry.New(registry.WithBlobHandler(registry.NewDiskBlobHandler(*dir))),
		ReadHeaderTimeout: 30 * time.Second,
	}
	log.Printf("registry: serving on %s, blobs in %s", *addr, *dir)
	log.Fatal(srv.ListenAndServe())
}
