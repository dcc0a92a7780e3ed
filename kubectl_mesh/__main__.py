from kubectl_mesh.entry import main

if __name__ == "__main__":
    main()
