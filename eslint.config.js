import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'coverage/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The decision core is pure: no files, sockets, clocks or timers, no FFI, not the policy
    // loader (it reads files). test/core/purity.test.ts checks what it reaches transitively.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*'], message: 'src/core is pure: no node:* modules (I/O belongs to the shell)' },
          { group: ['koffi'], message: 'src/core is pure: no FFI' },
          { group: ['timers', 'timers/*'], message: 'src/core is pure: time is injected' },
          { group: ['**/policy/load.js', '**/policy/index.js'], message: 'src/core may not import the policy loader (it reads files)' },
          { group: ['**/report/index.js', '**/report/tracker.js', '**/report/provision.js'], message: 'src/core takes the report parsers one by one (the tracker and provisioning are the shell\'s)' },
        ],
      }],
    },
  },
);
