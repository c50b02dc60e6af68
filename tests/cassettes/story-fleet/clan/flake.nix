# Written by `clan-coord lab up`: the lab fleet's clan, as an operator's clan repo is written.
# clan-core and its inputs are the vendored sources unpacked into the lab's cache (Nix 2.8,
# offline: every input local; clan-core's inputs that nothing here uses follow an empty flake).
{
  inputs = {
    clan-core.url = "path:/var/cache/clan-coord-lab/clan-flake-39ffceacd7f6123c0316fe149fa9eb65/clan-core";
    nixpkgs.url = "path:/var/cache/clan-coord-lab/clan-flake-39ffceacd7f6123c0316fe149fa9eb65/nixpkgs-lib";
    flake-parts.url = "path:/var/cache/clan-coord-lab/clan-flake-39ffceacd7f6123c0316fe149fa9eb65/flake-parts";
    flake-parts.inputs.nixpkgs-lib.follows = "nixpkgs";
    systems.url = "path:/var/cache/clan-coord-lab/clan-flake-39ffceacd7f6123c0316fe149fa9eb65/systems";
    empty.url = "path:/var/cache/clan-coord-lab/clan-flake-39ffceacd7f6123c0316fe149fa9eb65/empty";
    clan-core.inputs = {
      nixpkgs.follows = "nixpkgs";
      flake-parts.follows = "flake-parts";
      systems.follows = "systems";
      disko.follows = "empty";
      sops-nix.follows = "empty";
      nix-darwin.follows = "empty";
      treefmt-nix.follows = "empty";
      nix-select.follows = "empty";
      data-mesher.follows = "empty";
    };
  };

  outputs =
    inputs@{ self, clan-core, ... }:
    let
      clan = clan-core.lib.clan ({ inherit self; } // {
        inventory = {
          instances = {
            emergency-access = {
              module = {
                input = "clan-core";
                name = "emergency-access";
              };
              roles = {
                default = {
                  tags = {
                    all = { };
                  };
                };
              };
            };
            sshd-clan = {
              module = {
                input = "clan-core";
                name = "sshd";
              };
              roles = {
                client = {
                  tags = {
                    all = { };
                  };
                };
                server = {
                  tags = {
                    all = { };
                  };
                };
              };
            };
            users-root = {
              module = {
                input = "clan-core";
                name = "users";
              };
              roles = {
                default = {
                  settings = {
                    prompt = false;
                    share = true;
                    user = "root";
                  };
                  tags = {
                    all = { };
                  };
                };
              };
            };
            zerotier = {
              module = {
                input = "clan-core";
                name = "zerotier";
              };
              roles = {
                controller = {
                  machines = {
                    hetzner-vm = { };
                  };
                };
                peer = {
                  tags = {
                    peer = { };
                  };
                };
              };
            };
          };
          machines = {
            gcp-vm = {
              deploy = {
                targetHost = "root@198.18.100.11";
              };
              description = "lab machine 1";
              tags = [ "lab" "peer" ];
            };
            hetzner-vm = {
              deploy = {
                targetHost = "root@198.18.100.10";
              };
              description = "lab machine 0";
              tags = [ "lab" ];
            };
          };
        };
        meta = {
          description = "clan-coord lab fleet (Linux namespaces)";
          domain = "clan";
          name = "lab-clan-zerotier";
        };
      });
    in
    {
      inherit (clan.config) clanInternals;
      clan = clan.config;
    };
}
