-- qjt_buildtool: stand-in for a build-only dependency (e.g. a luarocks build
-- backend). It does nothing; its presence in the tree is what tests check.
return {
    name = "qjt-buildtool",
    version = "1.0",
}
