#!/usr/bin/env node
// Writes the package's debian/copyright to stdout: xenballoond's own notice, then every npm
// package esbuild put into the bundles (read from esbuild's metafiles) with its license file as
// the package ships it. Apache-2.0 texts point to /usr/share/common-licenses, as Debian asks.
// usage: copyright.mjs META.json...
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const names = new Set(['koffi', '@koromix/koffi-linux-x64']);
for (const meta of process.argv.slice(2)) {
  for (const input of Object.keys(JSON.parse(readFileSync(meta, 'utf8')).inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input);
    if (m) names.add(m[1]);
  }
}

function licenseText(dir, license) {
  if (license === 'Apache-2.0') return 'On Debian systems the full text of the Apache License 2.0 is in\n/usr/share/common-licenses/Apache-2.0.';
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.(md|txt))?$/i.test(f));
  // koffi's prebuilt native module ships without a license file; it is koffi's, by koffi's author.
  if (!file && dir.endsWith('koffi-linux-x64')) return 'The native module built from koffi\'s source; koffi\'s license (above) applies.';
  if (!file) throw new Error(`${dir}: no license file`);
  return readFileSync(join(dir, file), 'utf8').trim();
}

/** A copyright file's continuation lines: indented, blank lines as " .". */
const indent = (text) => text.split('\n').map((l) => (l.trim() === '' ? ' .' : ` ${l}`)).join('\n');

const out = [
  'This is xenballoond, a Xen dom0 memory balancer, packaged from its own source tree.',
  '',
  'xenballoond is free software; you can redistribute it and/or modify it under the terms of',
  'version 2 of the GNU General Public License as published by the Free Software Foundation.',
  'On Debian systems the full text of the GNU General Public License version 2 is in',
  '/usr/share/common-licenses/GPL-2.',
  '',
  'The programs in /usr/lib/xenballoond/bin/ are bundles: besides xenballoond\'s own code they',
  'contain the following npm packages, and /usr/lib/xenballoond/node_modules/ holds',
  '@koromix/koffi-linux-x64 (koffi\'s native module) and pino-pretty. Their licenses follow.',
];
for (const name of [...names].sort()) {
  const dir = join('node_modules', name);
  if (!existsSync(join(dir, 'package.json'))) continue;
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  out.push('', `${name} ${pkg.version} (license: ${pkg.license})`, indent(licenseText(dir, pkg.license)));
}
process.stdout.write(out.join('\n') + '\n');
