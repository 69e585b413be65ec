// Package browsertest holds the end-to-end tests of the web apps (package
// web): they drive the speaker and listener apps in headless Chromium
// against real nodes. They run when PENTECOST_TEST_BROWSER names a Chromium
// binary and skip otherwise; see docs/webapps.md.
package browsertest
